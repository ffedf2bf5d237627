#!/usr/bin/env bash
# profiles.sh: the named storage profiles of the benchmarks, applied to both access paths.
# Source it, then `profile_load NAME` sets:
#   PROFILE_RTT_MS       one network round trip, ms (what each NFS operation costs)
#   PROFILE_JITTER_MS    +/- uniform jitter of that round trip, ms
#   PROFILE_RATE_MBIT    bandwidth cap per direction, Mbit/s (0 = none)
#   PROFILE_LFS_DELAY_MS latencyfs --delay-ms: one round trip per FUSE request (kernel mount)
#   PROFILE_LFS_JITTER_MS latencyfs --jitter-ms
#   PROFILE_PROXY_DELAY_MS delayproxy --delay-ms: one way, half a round trip (nfs://)
#   PROFILE_PROXY_JITTER_MS delayproxy --jitter-ms (half the round trip's)
# `profile_names` prints the names. Figures and their sources: bench/README.md, "Profiles".
#   name          rtt_ms  jitter_ms  rate_mbit
PROFILES_TABLE="
local         0       0          0
efs-gp        0.6     0.2        12000
efs-maxio     4       1          4000
filestore-hs  0.8     0.2        9600
"

# Prints the profile names, one a line.
profile_names() {
	awk 'NF == 4 { print $1 }' <<<"$PROFILES_TABLE"
}

# Sets the PROFILE_* variables for profile $1; returns 1 (with a message) if unknown.
profile_load() {
	local line
	line=$(awk -v n="$1" 'NF == 4 && $1 == n' <<<"$PROFILES_TABLE")
	if [ -z "$line" ]; then
		echo "profiles.sh: unknown profile '$1' (known: $(profile_names | tr '\n' ' '))" >&2
		return 1
	fi
	read -r PROFILE_NAME PROFILE_RTT_MS PROFILE_JITTER_MS PROFILE_RATE_MBIT <<<"$line"
	PROFILE_LFS_DELAY_MS=$PROFILE_RTT_MS
	PROFILE_LFS_JITTER_MS=$PROFILE_JITTER_MS
	PROFILE_PROXY_DELAY_MS=$(awk -v r="$PROFILE_RTT_MS" 'BEGIN { printf "%g", r / 2 }')
	PROFILE_PROXY_JITTER_MS=$(awk -v j="$PROFILE_JITTER_MS" 'BEGIN { printf "%g", j / 2 }')
	export PROFILE_NAME PROFILE_RTT_MS PROFILE_JITTER_MS PROFILE_RATE_MBIT \
		PROFILE_LFS_DELAY_MS PROFILE_LFS_JITTER_MS PROFILE_PROXY_DELAY_MS \
		PROFILE_PROXY_JITTER_MS
}
