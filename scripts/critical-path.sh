#!/usr/bin/env bash
# How long a bench server takes from `epoll_wait` returning to the `recvfrom` that reads
# the request (the runtime's work on a 1-connection round trip's critical path), and
# from `recvfrom` to `sendto`, and from `sendto` to the next system call: medians from
# the kernel's syscall tracepoints, tracing overhead included (compare servers, not
# absolute values).
#
#   bash scripts/critical-path.sh CONTENDER [BIN_DIR]
#   bash scripts/critical-path.sh blitz-ct    # e.g. epoll_wait -> recvfrom 0.53 us
#   bash scripts/critical-path.sh mio         #                            0.39 us
#
# Needs perf (apt-get install -y linux-perf) and the release bench binaries (`cargo
# build --release -p blitz-io-bench`). The server runs pinned to CPU 1 and the load
# generator (1 connection, 64-byte echo, blocking socket) to CPU 0; one second is
# recorded after 1.5 s of load. x86-64 syscall numbers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
c=${1:?usage: critical-path.sh CONTENDER [BIN_DIR]}
B="${2:-$ROOT/target/release}"
command -v perf >/dev/null || { echo "perf is needed (apt-get install -y linux-perf)" >&2; exit 2; }
tmp=$(mktemp -d)
taskset -c 1 "$B/server" --contender "$c" --workload echo --addr 127.0.0.1:0 >"$tmp/server" &
sp=$!
trap 'kill $sp 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q READY "$tmp/server" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/READY //p' "$tmp/server")
"$B/loadgen" --workload echo --addr "$addr" --conns 1 --size 64 --duration 4 --warmup 0 --cpu 0 >/dev/null &
lp=$!
sleep 1.5
perf record -q -e raw_syscalls:sys_enter,raw_syscalls:sys_exit -p "$sp" -o "$tmp/perf.data" -- sleep 1 2>/dev/null
wait "$lp"
perf script --ns -i "$tmp/perf.data" -F time,event,trace 2>/dev/null >"$tmp/trace"
python3 - "$c" "$tmp/trace" <<'PY'
import re, statistics, sys
EPOLL_WAIT, RECVFROM, SENDTO = 232, 45, 44
ev = []
for line in open(sys.argv[2]):
    m = re.match(r'\s*([\d.]+):\s+raw_syscalls:(sys_enter|sys_exit):\s+NR (\d+)', line)
    if m:
        ev.append((float(m.group(1)), m.group(2), int(m.group(3))))
gaps = {'epoll_wait -> recvfrom': [], 'recvfrom -> sendto': [], 'sendto -> next': []}
for i, (t, kind, nr) in enumerate(ev):
    if kind != 'sys_exit':
        continue
    nxt = next((e for e in ev[i + 1:i + 8] if e[1] == 'sys_enter'), None)
    if nxt is None:
        continue
    if nr == EPOLL_WAIT and nxt[2] == RECVFROM:
        gaps['epoll_wait -> recvfrom'].append(nxt[0] - t)
    elif nr == RECVFROM and nxt[2] == SENDTO:
        gaps['recvfrom -> sendto'].append(nxt[0] - t)
    elif nr == SENDTO:
        gaps['sendto -> next'].append(nxt[0] - t)
print(sys.argv[1] + ':', ', '.join('%s %.3f us (n %d)' % (k, statistics.median(v) * 1e6, len(v)) for k, v in gaps.items() if v))
PY
