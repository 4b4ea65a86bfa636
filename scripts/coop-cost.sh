#!/usr/bin/env bash
# What the cooperative budget costs on the 50-connection 64-byte echo (issue 5's target:
# at most 1%). Builds the bench twice, with the budget (normal build) and without it
# (`--cfg blitz_no_coop`, a measurement-only build), then measures both ways:
#
#   1. user-space instructions per round trip of the blitz-ct server (callgrind; stable
#      on a noisy machine), via scripts/callgrind-server.sh;
#   2. round trips/s and server CPU µs per round trip, the two servers running side by
#      side (server on CPU 1, load generator on CPU 0) and loaded in turn, ROUNDS times,
#      via scripts/ab-servers.sh (which also reports the user-space share of server CPU).
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
echo "   A = with the budget, B = without; both servers on CPU 1, load generator on CPU 0"
PRE_A="taskset -c 1" PRE_B="taskset -c 1" bash scripts/ab-servers.sh "$A" "$B" blitz-ct "$rounds" -- \
  --workload echo --conns "$conns" --size 64 --duration 2 --warmup 0.5 --cpu 0
echo "The budget's share of server CPU is about (its share of user-space instructions, part 1)"
echo "times A's user-space share of server CPU."
