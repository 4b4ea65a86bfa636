#!/usr/bin/env bash
# Instructions per round trip of one benchmark server, by function (callgrind: stable on
# a noisy machine, unlike wall-clock time).
#
#   bash scripts/callgrind-server.sh CONTENDER CONNS [TOP]
#   bash scripts/callgrind-server.sh blitz-ct 50          # e.g. ~950 instructions/rt
#
# CONTENDER: blitz-ct, blitz-mt, tokio-ct, tokio-mt, mio, smol. Needs valgrind
# (apt-get install -y valgrind) and the release bench binaries (`cargo build --release
# -p blitz-io-bench`). Runs the server under callgrind, warms up 1 s at CONNS
# connections of 64-byte echo, then profiles 5 s and divides by the round trips the load
# generator counted. Files go to target/callgrind/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
c=${1:?usage: callgrind-server.sh CONTENDER CONNS [TOP]}; n=${2:?usage: callgrind-server.sh CONTENDER CONNS [TOP]}; top=${3:-30}
# BIN_DIR / OUT_DIR override where the binaries come from and where files go (used by
# scripts/coop-cost.sh to profile a second build side by side).
B="${BIN_DIR:-$ROOT/target/release}"; out="${OUT_DIR:-$ROOT/target/callgrind}"; mkdir -p "$out"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install -y valgrind)" >&2; exit 2; }
rm -f "$out/cg.$c.out"*
valgrind --tool=callgrind --compress-strings=no --compress-pos=no --callgrind-out-file="$out/cg.$c.out" \
  "$B/server" --contender "$c" --workload echo --addr 127.0.0.1:0 >"$out/server.$c" 2>"$out/valgrind.$c" &
for _ in $(seq 100); do grep -q READY "$out/server.$c" 2>/dev/null && break; sleep 0.2; done
addr=$(sed -n 's/READY //p' "$out/server.$c")
vpid=$(pgrep -f "callgrind-out-file=$out/cg.$c.out" | head -1)
"$B/loadgen" --workload echo --addr "$addr" --conns "$n" --size 64 --duration 1 --warmup 0 --cpu 0 >/dev/null
callgrind_control -d "$vpid" >/dev/null 2>&1
"$B/loadgen" --workload echo --addr "$addr" --conns "$n" --size 64 --duration 5 --warmup 0 --cpu 0 >"$out/loadgen.$c.json"
callgrind_control -d "$vpid" >/dev/null 2>&1
sleep 1; kill "$vpid" 2>/dev/null || true; sleep 1
rts=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['round_trips'])" "$out/loadgen.$c.json")
echo "$c at $n connections: $rts round trips profiled; instructions per round trip (self cost):"
# Lines carrying the whole total are call-chain artefacts of inlining, not self costs.
callgrind_annotate --auto=no --inclusive=no --threshold=100 "$out/cg.$c.out.2" 2>/dev/null | grep -E "^ *[0-9,]+ " \
  | awk -v n="$rts" 'NR==1 {t=$1} {v=$1; gsub(",","",v); if (NR==1) printf "%8.1f  total\n", v/n; else if ($1 != t) printf "%8.1f  %s\n", v/n, substr($0, index($0,$3), 140)}' \
  | sort -rn | head -"$top" || true  # head closing the pipe early is not an error
