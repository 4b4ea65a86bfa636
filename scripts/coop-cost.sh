#!/usr/bin/env bash
# What the cooperative budget costs on the 50-connection 64-byte echo (issue 5's target:
# at most 1%). Builds the bench twice, with the budget (normal build) and without it
# (`--cfg blitz_no_coop`, a measurement-only build), then measures both ways:
#
#   1. user-space instructions per round trip of the blitz-ct server (callgrind; stable
#      on a noisy machine), via scripts/callgrind-server.sh;
#   2. round trips/s and server CPU µs per round trip, the two servers running side by
#      side (server on CPU 1, load generator on CPU 0) and loaded in turn, ROUNDS times.
#
#   bash scripts/coop-cost.sh [ROUNDS] [CONNS]      # defaults: 6 rounds, 50 connections
#
# Needs valgrind for part 1 (skipped with a message if it is missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
rounds=${1:-6}; conns=${2:-50}
cargo build --release -q -p blitz-io-bench
RUSTFLAGS="--cfg blitz_no_coop" CARGO_TARGET_DIR="$ROOT/target/nocoop" cargo build --release -q -p blitz-io-bench
A="$ROOT/target/release"; B="$ROOT/target/nocoop/release"

if command -v valgrind >/dev/null; then
  echo "== user-space instructions per round trip (callgrind, blitz-ct, $conns connections)"
  with=$(bash scripts/callgrind-server.sh blitz-ct "$conns" 1 | awk '/total/ {print $1}')
  without=$(BIN_DIR="$B" OUT_DIR="$ROOT/target/callgrind-nocoop" bash scripts/callgrind-server.sh blitz-ct "$conns" 1 | awk '/total/ {print $1}')
  python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'with budget {a:.1f}, without {b:.1f}: the budget adds {a-b:.1f} instructions/rt ({(a-b)/b*100:.2f}% of user-space instructions)')" "$with" "$without"
else
  echo "valgrind not installed: skipping the instruction count (apt-get install -y valgrind)"
fi

echo "== throughput and server CPU, side by side ($rounds rounds, $conns connections, 2 s each)"
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
"$A/server" --contender blitz-ct --workload echo --addr 127.0.0.1:0 --cpu 1 >"$tmp/a" &
pa=$!
"$B/server" --contender blitz-ct --workload echo --addr 127.0.0.1:0 --cpu 1 >"$tmp/b" &
pb=$!
for _ in $(seq 100); do grep -q READY "$tmp/a" 2>/dev/null && grep -q READY "$tmp/b" 2>/dev/null && break; sleep 0.1; done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ucpu() { awk '{print $14}' "/proc/$1/stat"; }
for r in $(seq "$rounds"); do
  for side in a b; do
    pid=$pa; [ "$side" = b ] && pid=$pb
    addr=$(sed -n 's/READY //p' "$tmp/$side")
    c0=$(cpu "$pid"); u0=$(ucpu "$pid")
    "$A/loadgen" --workload echo --addr "$addr" --conns "$conns" --size 64 --duration 2 --warmup 0.5 --cpu 0 >"$tmp/out"
    c1=$(cpu "$pid"); u1=$(ucpu "$pid")
    python3 -c "
import json,sys,os
d=json.load(open(sys.argv[1])); hz=os.sysconf('SC_CLK_TCK')
cpu=(int(sys.argv[3])-int(sys.argv[2]))/hz
user=(int(sys.argv[6])-int(sys.argv[5]))/hz
print(sys.argv[4], round(d['rps']), round(cpu*1e6/d['total_round_trips'],3), round(user/cpu,3))" "$tmp/out" "$c0" "$c1" "$side" "$u0" "$u1" >>"$tmp/rows"
  done
done
python3 - "$tmp/rows" <<'EOF'
import sys, statistics as st
rows=[l.split() for l in open(sys.argv[1])]
a=[(float(r[1]),float(r[2])) for r in rows if r[0]=='a']
b=[(float(r[1]),float(r[2])) for r in rows if r[0]=='b']
ratio=[x[0]/y[0] for x,y in zip(a,b)]
cpur=[x[1]/y[1] for x,y in zip(a,b)]
print("with budget    req/s:", [int(x[0]) for x in a], " CPU µs/rt:", [x[1] for x in a])
print("without budget req/s:", [int(x[0]) for x in b], " CPU µs/rt:", [x[1] for x in b])
print(f"with/without, per round: req/s {[round(x,3) for x in ratio]} median {st.median(ratio):.3f}; "
      f"CPU/rt {[round(x,3) for x in cpur]} median {st.median(cpur):.3f}")
us=st.median(float(r[3]) for r in rows if r[0]=='a')
print(f"user-space share of the budget build's server CPU (median): {us:.3f}; so the budget's "
      f"instructions are about (their share of user-space instructions) x {us:.2f} of server CPU")
EOF
