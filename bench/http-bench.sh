#!/usr/bin/env bash
# The --urls benchmark (issue 15): vhprep fetching a URL list against the tools a user
# would otherwise run, side by side in one run, through bench/delayproxy in front of a
# loopback nginx (tests/fixtures/http.sh) at several round trips.
#
#   bash bench/http-bench.sh [--count N] [--rtts local,efs-maxio,rtt20] [--rss-lines N]
#                            [--smoke]
#
# For each round trip (a profile of bench/profiles.sh, or rttN for N ms, jitter N/10,
# the efs-maxio bandwidth cap), on N photo-like 500x375 JPEGs:
#   download alone  `vhprep bench --urls` over HTTP/1.1 and over HTTP/2+TLS, against
#                   `aria2c -i LIST -j 64` and `wget -i LIST` (one process, sequential)
#   whole job       vhprep --urls --resize 224 --quality 75, against the docs' PIL loop
#                   fed by urllib (bench/peers/python_urls.py)
# files/s over the whole command and vhprep's ratio to each peer. Then the RSS of vhprep
# over a --rss-lines list of URLs that nginx answers 404 at once (the list path: reading,
# selecting, fetching and recording without any image), next to a list 1/100 as long;
# and the retries and outcomes on the fault server (tests/fixtures/faultserver.py).
# Each command is printed (stderr) before it runs. Output: Markdown tables on stdout,
# raw runs as JSON lines in bench/results/http-<date>.jsonl. Ratios, not times, are the
# result: the machines are shared and noisy. After the whole job, the same command again
# into the same outputs dir is timed (every URL revalidated: 304, already_done). --smoke runs all of it tiny (ctest).
# Ports: $HTTP_FIXTURE_PORT (default 20580) .. +4 (servers, then the proxy's two).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
count=2000
rtts=local,efs-maxio,rtt20
rss_lines=1000000
smoke=0
while (($#)); do
	case $1 in
	--count) count=$2; shift 2 ;;
	--rtts) rtts=$2; shift 2 ;;
	--rss-lines) rss_lines=$2; shift 2 ;;
	--smoke) smoke=1; count=40; rtts=local,rtt4; rss_lines=2000; shift ;;
	*) echo "usage: $0 [--count N] [--rtts LIST] [--rss-lines N] [--smoke]" >&2; exit 2 ;;
	esac
done

build=${VHPREP_BUILD_DIR:-$root/build}
vhprep=$build/vhprep
mkimages=$build/bench/vhprep-mkimages
delayproxy=$build/bench/delayproxy
python=/usr/bin/python3
for tool in "$vhprep" "$mkimages" "$delayproxy"; do
	[ -x "$tool" ] || { echo "http-bench: $tool missing: build first" >&2; exit 2; }
done
for tool in aria2c wget nginx jq; do
	command -v "$tool" >/dev/null || { echo "http-bench: $tool is not installed" >&2; exit 77; }
done
# shellcheck source=bench/profiles.sh
source bench/profiles.sh
port=${HTTP_FIXTURE_PORT:-20580}
pport=$((port + 3))
cores=$(nproc)
work=$(mktemp -d "${TMPDIR:-/tmp}/vhprep-http-bench.XXXXXX")
export HTTP_STATE_DIR=$work/fixture
data=$build/bench-data/photos-$count-500-500x375
results=$root/bench/results/http-$(date -u +%Y%m%d).jsonl
[ "$smoke" = 1 ] && results=$work/results.jsonl
mkdir -p "$(dirname "$results")"
proxy_pid=""

cleanup() {
	[ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
	bash tests/fixtures/http.sh stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

if [ ! -f "$data.complete" ]; then
	rm -rf "$data"
	"$mkimages" --preset photos --count "$count" --quality 90 --per-dir 500 --out "$data" >&2
	touch "$data.complete"
fi
(cd "$data" && find . -name '*.jpg' | sed 's|^\./||' | sort) >"$work/files"
nfiles=$(wc -l <"$work/files")
bash tests/fixtures/http.sh start "$data" "$data/$(head -1 "$work/files")" >"$work/fixture.env"
while IFS='=' read -r k v; do printf -v "$k" '%s' "$v"; done <"$work/fixture.env"

# lists through the proxy: HTTP/1.1 on pport, HTTP/2+TLS on pport+1
sed "s|^|http://127.0.0.1:$pport/|" "$work/files" >"$work/h1.txt"
sed "s|^|https://127.0.0.1:$((pport + 1))/|" "$work/files" >"$work/h2.txt"
awk -v p="$pport" '{ print "http://127.0.0.1:" p "/" $0; print "  out=" $0 }' \
	"$work/files" >"$work/aria2.txt"

# start_proxy NAME: delayproxy at profile NAME (or rttN) in front of both nginx ports
start_proxy() {
	local name=$1 delay jitter rate
	if [[ $name =~ ^rtt([0-9.]+)$ ]]; then
		delay=$(awk -v r="${BASH_REMATCH[1]}" 'BEGIN { printf "%g", r / 2 }')
		jitter=$(awk -v r="${BASH_REMATCH[1]}" 'BEGIN { printf "%g", r / 20 }')
		profile_load efs-maxio >/dev/null
		rate=$PROFILE_RATE_MBIT
	else
		profile_load "$name"
		delay=$PROFILE_PROXY_DELAY_MS jitter=$PROFILE_PROXY_JITTER_MS rate=$PROFILE_RATE_MBIT
	fi
	rtt_ms=$(awk -v d="$delay" 'BEGIN { printf "%g", 2 * d }')
	"$delayproxy" --listen "127.0.0.1:$pport" --to "127.0.0.1:$port" \
		--listen "127.0.0.1:$((pport + 1))" --to "127.0.0.1:$((port + 1))" \
		--delay-ms "$delay" --jitter-ms "$jitter" --rate-mbit "$rate" 2>"$work/proxy.log" &
	proxy_pid=$!
	for _ in $(seq 50); do
		curl -s -o /dev/null "http://127.0.0.1:$pport/" && return 0
		sleep 0.1
	done
	echo "http-bench: delayproxy does not answer" >&2
	exit 1
}

stop_proxy() {
	kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null || true
	proxy_pid=""
}

declare -A rate
# measure NAME KIND COMMAND...: runs COMMAND once (@OUT@: a fresh dir), records files/s
# over the whole command and peak RSS; KIND "files" counts the .jpg files made under
# @OUT@, "bench" reads vhprep bench's JSON line; either must equal the list's length.
measure() {
	local name=$1 kind=$2
	shift 2
	local out=$work/out-$name
	rm -rf "$out"
	mkdir -p "$out"
	local cmd=("${@//@OUT@/$out}")
	echo "# $rtt_name/$name: ${cmd[*]}" >&2
	local t0 t1 secs rss produced
	t0=$(date +%s.%N)
	/usr/bin/time -f "%M" -o "$work/rss" "${cmd[@]}" >"$work/stdout" 2>"$work/stderr" ||
		{ echo "http-bench: $name failed:" >&2; tail -5 "$work/stderr" >&2; exit 1; }
	t1=$(date +%s.%N)
	secs=$(echo "$t1 - $t0" | bc -l)
	rss=$(tail -1 "$work/rss")
	if [ "$kind" = bench ]; then
		produced=$(jq -r .files "$work/stdout")
	else
		produced=$(find "$out" -type f -name '*.jpg' ! -name vhprep-preview.jpg | wc -l)
	fi
	[ "$produced" -eq "$nfiles" ] ||
		{ echo "http-bench: $name made $produced of $nfiles files" >&2; exit 1; }
	rate[$name]=$(echo "$nfiles / $secs" | bc -l)
	printf '{"bench":"http","rtt":"%s","rtt_ms":%s,"name":"%s","files":%d,"seconds":%.3f,"files_per_s":%.1f,"peak_rss_kb":%d,"cores":%d,"date":"%s"}\n' \
		"$rtt_name" "$rtt_ms" "$name" "$nfiles" "$secs" "${rate[$name]}" "$rss" "$cores" \
		"$(date -u +%FT%TZ)" >>"$results"
	rm -rf "$out"
}

# rerun_measure: the job once into a dir, then the same command again, timed: every URL
# asked with its ETag / Last-Modified and answered 304 (issue 15 item 4)
rerun_measure() {
	local out=$work/out-rerun t0 t1 secs done_n
	rm -rf "$out"
	"${vh[@]}" --urls "$work/h1.txt" --resize 224 --quality 75 --outputs "$out" >/dev/null 2>&1 ||
		{ echo "http-bench: the first run of the rerun failed" >&2; exit 1; }
	echo "# $rtt_name/job-vhprep-rerun: the same command again" >&2
	t0=$(date +%s.%N)
	"${vh[@]}" --urls "$work/h1.txt" --resize 224 --quality 75 --outputs "$out" >/dev/null 2>&1 ||
		{ echo "http-bench: the rerun failed" >&2; exit 1; }
	t1=$(date +%s.%N)
	secs=$(echo "$t1 - $t0" | bc -l)
	done_n=$(jq -r .files.already_done "$out/vhprep-summary.json")
	[ "$done_n" -eq "$nfiles" ] ||
		{ echo "http-bench: the rerun skipped $done_n of $nfiles" >&2; exit 1; }
	rate[job-vhprep-rerun]=$(echo "$nfiles / $secs" | bc -l)
	printf '{"bench":"http","rtt":"%s","rtt_ms":%s,"name":"job-vhprep-rerun","files":%d,"seconds":%.3f,"files_per_s":%.1f,"cores":%d,"date":"%s"}\n' \
		"$rtt_name" "$rtt_ms" "$nfiles" "$secs" "${rate[job-vhprep-rerun]}" "$cores" \
		"$(date -u +%FT%TZ)" >>"$results"
	rm -rf "$out"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", (b > 0 ? a / b : 0) }'; }

echo "## vhprep --urls: $nfiles JPEGs (500x375) from nginx through delayproxy; $cores cores; $(date -u +%F)"
echo
vh=("$vhprep" --quiet --metrics-interval 0)
IFS=, read -r -a rtt_list <<<"$rtts"
for rtt_name in "${rtt_list[@]}"; do
	start_proxy "$rtt_name"
	measure dl-vhprep-h1 bench "$vhprep" bench --urls "$work/h1.txt"
	measure dl-vhprep-h2 bench "$vhprep" bench --urls "$work/h2.txt" --cacert "$CACERT"
	measure dl-aria2c files aria2c -i "$work/aria2.txt" -j 64 -d @OUT@ -q \
		--allow-overwrite=true --auto-file-renaming=false
	measure dl-wget files wget -q -i "$work/h1.txt" -x -nH -P @OUT@
	measure job-vhprep files "${vh[@]}" --urls "$work/h1.txt" --resize 224 --quality 75 \
		--outputs @OUT@
	measure job-python files "$python" bench/peers/python_urls.py --size 224 --quality 75 \
		"$work/h1.txt" @OUT@
	rerun_measure
	stop_proxy
	echo "### $rtt_name: round trip $rtt_ms ms"
	echo
	echo "| run | files/s | vhprep's ratio |"
	echo "|---|---:|---|"
	printf '| download: vhprep bench --urls, HTTP/1.1 | %.1f | |\n' "${rate[dl-vhprep-h1]}"
	printf '| download: vhprep bench --urls, HTTP/2+TLS | %.1f | |\n' "${rate[dl-vhprep-h2]}"
	printf '| download: aria2c -i LIST -j 64 | %.1f | %s (h1) |\n' "${rate[dl-aria2c]}" \
		"$(ratio "${rate[dl-vhprep-h1]}" "${rate[dl-aria2c]}")"
	printf '| download: wget -i LIST | %.1f | %s (h1) |\n' "${rate[dl-wget]}" \
		"$(ratio "${rate[dl-vhprep-h1]}" "${rate[dl-wget]}")"
	printf '| job: vhprep --urls --resize 224 | %.1f | |\n' "${rate[job-vhprep]}"
	printf '| job: PIL loop with urllib | %.1f | %s |\n' "${rate[job-python]}" \
		"$(ratio "${rate[job-vhprep]}" "${rate[job-python]}")"
	printf '| job again into the same outputs (all 304: already_done) | %.1f | %s of the first run |\n' \
		"${rate[job-vhprep-rerun]}" "$(ratio "${rate[job-vhprep-rerun]}" "${rate[job-vhprep]}")"
	echo
done

# RSS of the list path: URLs nginx answers 404 at once, no proxy
rss_run() {
	local n=$1 list=$work/404-$1.txt out=$work/out-404
	awk -v n="$n" -v p="$port" 'BEGIN { for (i = 0; i < n; i++) printf "http://127.0.0.1:%d/missing/%08d.jpg\n", p, i }' >"$list"
	rm -rf "$out"
	echo "# rss/$n: ${vh[*]} --urls $list --max-errors $n --outputs $out" >&2
	local t0 t1
	t0=$(date +%s.%N)
	/usr/bin/time -f "%M" -o "$work/rss" "${vh[@]}" --urls "$list" --max-errors "$n" \
		--outputs "$out" >/dev/null 2>"$work/stderr" ||
		{ echo "http-bench: the $n-line list failed:" >&2; tail -5 "$work/stderr" >&2; exit 1; }
	t1=$(date +%s.%N)
	local failed
	failed=$(jq -r .files.failed "$out/vhprep-summary.json")
	[ "$failed" -eq "$n" ] || { echo "http-bench: $failed of $n URLs recorded" >&2; exit 1; }
	rss_kb[$n]=$(tail -1 "$work/rss")
	rss_s[$n]=$(echo "$t1 - $t0" | bc -l)
	printf '{"bench":"http","name":"rss-404","lines":%d,"seconds":%.3f,"peak_rss_kb":%d,"date":"%s"}\n' \
		"$n" "${rss_s[$n]}" "${rss_kb[$n]}" "$(date -u +%FT%TZ)" >>"$results"
	rm -rf "$out" "$list"
}
declare -A rss_kb rss_s
small=$((rss_lines / 100))
rtt_name=rss
rss_run "$small"
rss_run "$rss_lines"
echo "### RSS of a URL list answered 404 (the list path, no images)"
echo
echo "| lines | peak RSS (MB) | URLs/s |"
echo "|---:|---:|---:|"
for n in "$small" "$rss_lines"; do
	printf '| %d | %.1f | %.0f |\n' "$n" "$(echo "${rss_kb[$n]} / 1024" | bc -l)" \
		"$(echo "$n / ${rss_s[$n]}" | bc -l)"
done
echo

# retries and outcomes on the fault server
faults=("img/ok.jpg" "429/a.jpg?n=2" "429/b.jpg?n=9" "500/c.jpg?n=1" "503/d.jpg"
	"truncated/e.jpg" "slow/f.jpg?s=3" "loop/g.jpg" "tofile/h.jpg" "html/i.jpg"
	"big/j.jpg?mb=2" "404/k.jpg")
: >"$work/faults.txt"
for f in "${faults[@]}"; do echo "$FAULT_URL/$f" >>"$work/faults.txt"; done
out=$work/out-faults
echo "# faults: ${vh[*]} --urls $work/faults.txt --retries 3 --http-timeout 2 --max-size 1M --keep-query --max-errors 100 --outputs $out" >&2
"${vh[@]}" --urls "$work/faults.txt" --retries 3 --http-timeout 2 --max-size 1M \
	--keep-query --max-errors 100 --outputs "$out" >/dev/null 2>&1 ||
	{ echo "http-bench: the fault run failed" >&2; exit 1; }
curl -s "$FAULT_URL/counts" >"$work/counts.json"
echo "### Retries and outcomes on the fault server (--retries 3, --http-timeout 2, --max-size 1M)"
echo
echo "| URL | outcome | attempts | server hits |"
echo "|---|---|---:|---:|"
for f in "${faults[@]}"; do
	url=$FAULT_URL/$f
	path=/${f%%\?*}
	line=$(jq -c --arg u "$url" 'select(.metadata.url == $u) | .metadata' "$out/valohai.metadata.jsonl")
	if [ -n "$line" ]; then
		outcome=processed
	else
		line=$(jq -c --arg u "$url" 'select(.url == $u)' "$out/vhprep-errors.jsonl")
		outcome=$(jq -r .reason <<<"$line")
	fi
	attempts=$(jq -r '.attempts // "-"' <<<"$line")
	hits=$(jq -r --arg p "$path" '.[$p] // 0' "$work/counts.json")
	printf '| %s | %s | %s | %s |\n' "/$f" "$outcome" "$attempts" "$hits"
	printf '{"bench":"http","name":"fault","path":"/%s","outcome":"%s","attempts":"%s","server_hits":%d}\n' \
		"$f" "$outcome" "$attempts" "$hits" >>"$results"
done
echo
echo "Raw runs: $results" >&2
