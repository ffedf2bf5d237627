#!/usr/bin/env bash
# test_delayproxy.sh: functional test of bench/delayproxy against a loopback echo server
# (python3 socketserver). Checks: a 20 MB random stream passes intact both ways (sha256),
# a half-close reaches the server and the reply still comes back, 50 concurrent
# connections all complete, two forwards in one process, refusal of a non-loopback
# target, a clean exit 0 with JSON counters on SIGTERM; and, as a functional check of the
# settings (not a benchmark), the median RTT of 50 small round trips at --delay-ms 10 is
# 19-24 ms and a 20 MB transfer at --rate-mbit 100 runs at 90-110 Mbit/s.
# Optionally (when tests/fixtures/ganesha.sh can run here) `nfs-ls -R` over NFSv3 through
# the proxy (nfsport and mountport) lists the same tree as directly.
# Exit: 0 all passed, 77 binary missing (skip), 1 a check failed.
# Binary: $DELAYPROXY, else $VHPREP_BUILD_DIR/bench/delayproxy (default <repo>/build).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/bench/check.sh
source "$here/check.sh"
build=${VHPREP_BUILD_DIR:-$here/../../build}
proxy=${DELAYPROXY:-$build/bench/delayproxy}
py=/usr/bin/python3
ganesha=$here/../fixtures/ganesha.sh

if [ ! -x "$proxy" ]; then
	echo "delayproxy: skipped: no binary at $proxy" >&2
	exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/test_delayproxy.XXXXXX") || exit 1
pids=()
ganesha_up=0

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	[ "$ganesha_up" -eq 1 ] && "$ganesha" stop >/dev/null 2>&1
	rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# The helper: an echo server, and the clients that measure through the proxy.
cat >"$work/helper.py" <<'PYEOF'
import hashlib, random, socket, socketserver, statistics, sys, threading, time

MARK = b"EOF-SEEN\n"  # the echo server sends this after the client's FIN, then closes

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                s.sendall(b)
            s.sendall(MARK)
            s.shutdown(socket.SHUT_WR)
        except OSError:  # a client reset (the RST check): the proxy forwarded it
            pass

class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def stream(port, size, seed):
    """Send size random bytes, half-close, read all back. Returns (ok, seconds)."""
    rng = random.Random(seed)
    data = rng.randbytes(size)
    want = hashlib.sha256(data + MARK).hexdigest()
    s = connect(port)
    t0 = time.monotonic()
    def send():
        view = memoryview(data)
        for i in range(0, size, 65536):
            s.sendall(view[i:i + 65536])
        s.shutdown(socket.SHUT_WR)
    th = threading.Thread(target=send)
    th.start()
    h, got = hashlib.sha256(), 0
    while True:
        b = s.recv(262144)
        if not b:
            break
        h.update(b)
        got += len(b)
    dt = time.monotonic() - t0
    th.join()
    s.close()
    return h.hexdigest() == want and got == size + len(MARK), dt

def main():
    cmd = sys.argv[1]
    if cmd == "port":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
    elif cmd == "echo":
        srv = Server(("127.0.0.1", 0), Echo)
        with open(sys.argv[2] + ".tmp", "w") as f:
            f.write("%d\n" % srv.server_address[1])
        import os
        os.rename(sys.argv[2] + ".tmp", sys.argv[2])
        srv.serve_forever()
    elif cmd == "wait":
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=1).close()
                return
            except OSError:
                time.sleep(0.025)
        sys.exit(1)
    elif cmd == "stream":
        ok, _ = stream(int(sys.argv[2]), int(sys.argv[3]), 1)
        sys.exit(0 if ok else 1)
    elif cmd == "halfclose":
        s = connect(int(sys.argv[2]))
        s.sendall(b"hello\n")
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            got += b
        sys.exit(0 if got == b"hello\n" + MARK else 1)
    elif cmd == "many":
        port, n, size = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        res = [False] * n
        def one(i):
            try:
                res[i] = stream(port, size, i + 10)[0]
            except OSError:
                pass
        ths = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ths: t.start()
        for t in ths: t.join()
        print("     %d/%d connections completed" % (sum(res), n))
        sys.exit(0 if all(res) else 1)
    elif cmd == "rst":
        s = connect(int(sys.argv[2]))
        s.sendall(b"x" * 1000)
        time.sleep(0.05)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    elif cmd == "flood":
        # write without ever reading for N seconds; print the bytes the proxy accepted
        s = connect(int(sys.argv[2]))
        s.setblocking(False)
        buf, sent, end = b"z" * 65536, 0, time.monotonic() + float(sys.argv[3])
        while time.monotonic() < end:
            try:
                sent += s.send(buf)
            except BlockingIOError:
                time.sleep(0.01)
        print(sent)
        s.close()
    elif cmd == "rtt":
        s = connect(int(sys.argv[2]))
        msg, rtts = b"x" * 32, []
        for _ in range(int(sys.argv[3])):
            t0 = time.monotonic()
            s.sendall(msg)
            got = 0
            while got < len(msg):
                got += len(s.recv(4096))
            rtts.append((time.monotonic() - t0) * 1000)
        s.close()
        print("%.3f" % statistics.median(rtts))
    elif cmd == "tput":
        size = int(sys.argv[3])
        ok, dt = stream(int(sys.argv[2]), size, 2)
        print("%.2f" % (size * 8 / dt / 1e6))
        sys.exit(0 if ok else 1)

main()
PYEOF

start_echo() {
	"$py" "$work/helper.py" echo "$work/echo.port" &
	pids+=($!)
	for _ in $(seq 100); do
		[ -s "$work/echo.port" ] && break
		sleep 0.05
	done
	echo_port=$(cat "$work/echo.port" 2>/dev/null)
	[ -n "$echo_port" ]
}

# start_proxy NAME PORT ARGS...: run the proxy in the background, wait for PORT.
start_proxy() {
	local name=$1 port=$2
	shift 2
	"$proxy" --stats-file "$work/$name.json" "$@" 2>"$work/$name.err" &
	pids+=($!)
	eval "pid_$name=$!"
	"$py" "$work/helper.py" wait "$port"
}

# stop_proxy NAME: SIGTERM, expect exit 0 and the stats file.
stop_proxy() {
	local pid
	eval "pid=\$pid_$1"
	kill -TERM "$pid" && wait "$pid" && [ -s "$work/$1.json" ]
}

port() { "$py" "$work/helper.py" port; }

in_range() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'; }

json_field() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1"; }

if ! start_echo; then
	echo "delayproxy: cannot start the echo server" >&2
	exit 1
fi

# -- plain forwarding: two forwards in one process, both syntaxes --
p1=$(port)
p2=$(port)
check "start with two forwards" start_proxy plain "$p1" \
	--forward "$p1:127.0.0.1:$echo_port" --listen "127.0.0.1:$p2" --to "localhost:$echo_port"
check "20 MB stream intact both ways (sha256)" "$py" "$work/helper.py" stream "$p1" 20000000
check "20 MB stream intact on the second forward" "$py" "$work/helper.py" stream "$p2" 20000000
check "half-close reaches the server, reply comes back" "$py" "$work/helper.py" halfclose "$p1"
check "50 concurrent connections complete" "$py" "$work/helper.py" many "$p1" 50 200000
check "SIGTERM: exit 0 and stats file" stop_proxy plain
conns=$(json_field "$work/plain.json" connections)
up=$(json_field "$work/plain.json" bytes_client_to_server)
check "stats count connections and bytes" test "${conns:-0}" -ge 53 -a "${up:-0}" -ge 50000000
check "stats JSON also on stderr" grep -q '"connections":' "$work/plain.err"

# -- option checks (nothing is contacted) --
check "non-loopback target refused" test "$("$proxy" --forward 1:10.0.0.1:2 2>/dev/null; echo $?)" -eq 2
help_ok() { "$proxy" --help | grep -q -- --forward; }
check "--help exits 0" help_ok

# -- jitter larger than the delay must not reorder bytes; a client RST closes both --
p7=$(port)
check "start with --delay-ms 2 --jitter-ms 5" start_proxy jitter "$p7" \
	--forward "$p7:127.0.0.1:$echo_port" --delay-ms 2 --jitter-ms 5 --seed 7
check "5 MB stream intact under jitter (no reordering)" "$py" "$work/helper.py" stream "$p7" 5000000
"$py" "$work/helper.py" rst "$p7"
sleep 0.2
check "jitter: SIGTERM exit 0" stop_proxy jitter
check "client RST counted as a reset" test "$(json_field "$work/jitter.json" resets)" -ge 1

# -- back-pressure: a client that writes and never reads, behind 1 Mbit/s --
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
p8=$(port)
check "start with --rate-mbit 1" start_proxy flood "$p8" --forward "$p8:127.0.0.1:$echo_port" --rate-mbit 1
flooded=$("$py" "$work/helper.py" flood "$p8" 2)
flood_hwm=$(hwm_kb "$pid_flood")
echo "     flood for 2 s: ${flooded:-?} bytes accepted, proxy peak RSS ${flood_hwm:-?} kB"
check "back-pressure: the client is stopped (< 20 MB accepted)" test "${flooded:-0}" -lt 20000000
check "back-pressure: proxy peak RSS < 32 MB" test "${flood_hwm:-999999}" -lt 32768
check "flood: SIGTERM exit 0" stop_proxy flood

# -- delay: median RTT of 50 round trips at 10 ms one way --
p3=$(port)
check "start with --delay-ms 10" start_proxy delay "$p3" --forward "$p3:127.0.0.1:$echo_port" --delay-ms 10
rtt=$("$py" "$work/helper.py" rtt "$p3" 50)
echo "     median RTT at --delay-ms 10: ${rtt:-?} ms (want 19-24)"
check "median RTT within 19-24 ms" in_range "${rtt:-0}" 19 24
check "delay: SIGTERM exit 0" stop_proxy delay

# -- rate: 20 MB at 100 Mbit/s --
p4=$(port)
check "start with --rate-mbit 100" start_proxy rate "$p4" --forward "$p4:127.0.0.1:$echo_port" --rate-mbit 100
mbit=$("$py" "$work/helper.py" tput "$p4" 20000000)
echo "     throughput at --rate-mbit 100: ${mbit:-?} Mbit/s (want 90-110)"
check "throughput within 90-110 Mbit/s" in_range "${mbit:-0}" 90 110
check "rate: SIGTERM exit 0" stop_proxy rate

# -- optional: nfs-ls -R over NFSv3 through the proxy --
nfs_check() {
	local out rc nfsdir=$work/export p5 p6
	mkdir -p "$nfsdir/a/b" "$nfsdir/c" && echo x >"$nfsdir/a/b/f1" && echo y >"$nfsdir/c/f2" &&
		touch "$nfsdir/top"
	[ -x "$ganesha" ] && command -v nfs-ls >/dev/null || return 77
	out=$(GANESHA_STATE_DIR=$work/ganesha "$ganesha" start "$nfsdir" 2>"$work/ganesha.err")
	rc=$?
	[ "$rc" -eq 0 ] || return 77
	ganesha_up=1
	p5=$(port)
	p6=$(port)
	start_proxy nfs "$p5" --forward "$p5:127.0.0.1:${GANESHA_NFS_PORT:-20490}" \
		--forward "$p6:127.0.0.1:${GANESHA_MNT_PORT:-20491}" --delay-ms 1 || return 1
	nfs-ls -R "nfs://127.0.0.1$nfsdir?version=3&nfsport=${GANESHA_NFS_PORT:-20490}&mountport=${GANESHA_MNT_PORT:-20491}" \
		>"$work/direct.txt" 2>&1 || return 1
	nfs-ls -R "nfs://127.0.0.1$nfsdir?version=3&nfsport=$p5&mountport=$p6" >"$work/proxied.txt" 2>&1 || return 1
	[ -s "$work/direct.txt" ] && cmp -s "$work/direct.txt" "$work/proxied.txt" &&
		stop_proxy nfs && [ "$(json_field "$work/nfs.json" connections)" -ge 3 ]
}
if [ -x "$ganesha" ]; then
	export GANESHA_STATE_DIR=$work/ganesha
	nfs_check
	rc=$?
	if [ "$rc" -eq 77 ]; then
		echo "skip nfs-ls -R through the proxy (ganesha fixture cannot run here)"
	else
		check "nfs-ls -R via the proxy lists the same as direct" test "$rc" -eq 0
	fi
fi

echo "delayproxy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
