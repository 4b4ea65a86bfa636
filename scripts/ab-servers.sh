#!/usr/bin/env bash
# Side-by-side A/B of two bench servers (two builds, two contenders, or one pinned and
# one not): both run at once, the load generator loads them in turn, ROUNDS times, and
# the script prints round trips/s and server CPU µs per round trip per round, B/A, and
# the user-space share of each side's server CPU.
#
#   bash scripts/ab-servers.sh BIN_A BIN_B CONTENDER ROUNDS -- LOADGEN ARGS...
#   # e.g. current-thread against 2 workers, both pinned to CPU 1, 500 connections:
#   PRE_A="taskset -c 1" PRE_B="taskset -c 1" CA=blitz-ct CB=blitz-mt \
#     bash scripts/ab-servers.sh target/release target/release x 6 -- \
#     --workload echo --conns 500 --size 64 --duration 2 --warmup 0.3 --cpu 0
#
# BIN_A/BIN_B: directories holding `server` (e.g. a second build's target/release).
# Environment: CA/CB override the contender per side, PRE_A/PRE_B prefix the server
# command (taskset), SW is the server workload (echo; udp for --workload udp).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
A=${1:?usage}; B=${2:?usage}; c=${3:?usage}; rounds=${4:?usage}; shift 5
LG="$ROOT/target/release/loadgen"
tmp=$(mktemp -d)
# shellcheck disable=SC2086
${PRE_A:-} "$A/server" --contender "${CA:-$c}" --workload "${SW:-echo}" --addr 127.0.0.1:0 >"$tmp/a" &
pa=$!
# shellcheck disable=SC2086
${PRE_B:-} "$B/server" --contender "${CB:-$c}" --workload "${SW:-echo}" --addr 127.0.0.1:0 >"$tmp/b" &
pb=$!
trap 'kill $pa $pb 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q READY "$tmp/a" 2>/dev/null && grep -q READY "$tmp/b" 2>/dev/null && break; sleep 0.1; done
cpu() { awk '{print $14 + $15, $14}' "/proc/$1/stat"; }  # user+system, user (ticks)
for _ in $(seq "$rounds"); do
  for side in a b; do
    pid=$pa; [ "$side" = b ] && pid=$pb
    addr=$(sed -n 's/READY //p' "$tmp/$side")
    c0=$(cpu "$pid"); "$LG" --addr "$addr" "$@" >"$tmp/out"; c1=$(cpu "$pid")
    python3 -c "
import json,sys,os
d=json.load(open(sys.argv[1])); hz=os.sysconf('SC_CLK_TCK')
(t0,u0),(t1,u1)=[map(int,x.split()) for x in sys.argv[2:4]]
print(sys.argv[4], round(d['rps']), round((t1-t0)/hz*1e6/d['total_round_trips'],2), round((u1-u0)/max(t1-t0,1),3))" \
      "$tmp/out" "$c0" "$c1" "$side" >>"$tmp/rows"
  done
done
python3 - "$tmp/rows" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
a = [(float(r[1]), float(r[2])) for r in rows if r[0] == 'a']
b = [(float(r[1]), float(r[2])) for r in rows if r[0] == 'b']
print("A rps", [int(x[0]) for x in a], "CPU µs/rt", [x[1] for x in a])
print("B rps", [int(x[0]) for x in b], "CPU µs/rt", [x[1] for x in b])
r = [y[0] / x[0] for x, y in zip(a, b)]
c = [y[1] / x[1] for x, y in zip(a, b)]
print(f"B/A rps per round {[round(v, 3) for v in r]} median {st.median(r):.3f}; CPU/rt median {st.median(c):.3f}")
for side in "ab":
    share = st.median(float(row[3]) for row in rows if row[0] == side)
    print(f"user-space share of {side.upper()}'s server CPU (median): {share:.3f}")
PY
