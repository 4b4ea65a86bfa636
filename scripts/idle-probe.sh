#!/usr/bin/env bash
# How often a server sleeps, and what that costs its peer: per contender, round trips/s
# (or connections/s), the load generator's CPU per operation, and the server's CPU,
# voluntary+involuntary context switches and system calls per operation (perf stat on
# the server process). Servers run at once; the load generator loads each in turn.
#
#   bash scripts/idle-probe.sh LABEL=CONTENDER[:SPIN_US] ...
#   # e.g. churn on one thread, idle spin off / default / 20 µs, against tokio:
#   W=churn CONNS=16 bash scripts/idle-probe.sh off=blitz-ct:0 def=blitz-ct on20=blitz-ct:20 tk=tokio-ct
#
# SPIN_US sets BLITZ_IDLE_SPIN_US for a blitz server (`Builder::idle_spin`, experiments
# only). Environment: W (loadgen workload: churn or echo; default churn), CONNS (16),
# R (rounds, 2), D (seconds per run, 1), PIN (server prefix, default `taskset -c 1`;
# PIN=" " leaves multi-thread servers unpinned), B (binaries, target/release).
# Needs perf (Debian linux-perf) with tracepoint access.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
B=${B:-$ROOT/target/release}
W=${W:-churn}; CONNS=${CONNS:-16}; R=${R:-2}; D=${D:-1}
command -v perf >/dev/null || { echo "perf is needed (apt-get install -y linux-perf)" >&2; exit 2; }
tmp=$(mktemp -d)
labels=()
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
for spec in "$@"; do
  l=${spec%%=*}; rest=${spec#*=}; c=${rest%%:*}; sp=
  [[ $rest == *:* ]] && sp=${rest#*:}
  # shellcheck disable=SC2086
  env ${sp:+BLITZ_IDLE_SPIN_US=$sp} ${PIN:-taskset -c 1} "$B/server" --contender "$c" --workload echo --addr 127.0.0.1:0 >"$tmp/$l" &
  pids+=($!); echo $! >"$tmp/$l.pid"; labels+=("$l")
done
for l in "${labels[@]}"; do
  for _ in $(seq 100); do grep -q READY "$tmp/$l" 2>/dev/null && break; sleep 0.1; done
done
for _ in $(seq "$R"); do
  for l in "${labels[@]}"; do
    addr=$(sed -n 's/READY //p' "$tmp/$l"); pid=$(cat "$tmp/$l.pid")
    perf stat -x, -p "$pid" -e context-switches,raw_syscalls:sys_enter,task-clock -o "$tmp/perf" &
    pp=$!; sleep 0.1
    taskset -c 0 "$B/loadgen" --addr "$addr" --workload "$W" --conns "$CONNS" --size 64 --duration "$D" --warmup 0 --cpu 0 >"$tmp/out"
    kill -INT $pp; wait $pp
    python3 - "$tmp/out" "$tmp/perf" "$l" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); n = d['total_round_trips']
p = {}
for line in open(sys.argv[2]):
    f = line.strip().split(',')
    if len(f) > 3 and f[0] and f[0][0].isdigit():
        p[f[2]] = float(f[0])
print(f"{sys.argv[3]:8} {round(d['rps']):7}/s p50 {d['p50_us']:.0f} µs  loadgen CPU/op {d['loadgen_cpu_us_per_rt']:.2f} µs  "
      f"server: CPU/op {p['task-clock'] * 1e3 / n:.2f} µs, sleeps/op {p['context-switches'] / n:.3f}, "
      f"syscalls/op {p['raw_syscalls:sys_enter'] / n:.2f}")
PY
  done
done
