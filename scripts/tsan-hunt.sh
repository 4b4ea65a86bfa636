#!/usr/bin/env bash
# Hunts a rare hang in one test binary built by `scripts/sanitize.sh thread`: runs it in
# a loop and, when a run passes a time limit, dumps every thread's stack with gdb before
# the test's own timeout fires.
#
#   bash scripts/sanitize.sh thread                 # builds the TSan test binaries first
#   bash scripts/tsan-hunt.sh rt_spawn [SECONDS] [LIMIT]
#
# SECONDS: how long to keep looping (default 600); LIMIT: seconds after which a run's
# stacks are dumped (default 16; the tests' own bound is 20). Dumps go to
# target/sanitize/hunt/<run>.gdb, the output of a failed run to target/sanitize/hunt/<run>.out.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
name=${1:?usage: tsan-hunt.sh TEST_BINARY_NAME [SECONDS] [LIMIT]}
secs=${2:-600}
limit=${3:-16}
bin=$(ls -t target/sanitize/thread/*/debug/deps/"$name"-* 2>/dev/null | grep -v '\.d$' | head -1)
[ -n "$bin" ] || { echo "no TSan binary for $name: run scripts/sanitize.sh thread first" >&2; exit 2; }
command -v gdb >/dev/null || { echo "gdb is needed (apt-get install -y gdb)" >&2; exit 2; }
out=target/sanitize/hunt
mkdir -p "$out"
export TSAN_OPTIONS="suppressions=$ROOT/target/sanitize/tsan-suppressions.txt"
end=$((SECONDS + secs))
n=0
while [ "$SECONDS" -lt "$end" ]; do
  n=$((n + 1))
  "$bin" >"$out/current.out" 2>&1 &
  pid=$!
  t=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    t=$((t + 1))
    if [ "$t" -eq "$limit" ]; then
      gdb -p "$pid" -batch -ex "thread apply all bt 30" >"$out/$n.gdb" 2>&1
      echo "run $n: still running after $limit s; stacks in $out/$n.gdb"
    fi
  done
  wait "$pid"
  if grep -q FAILED "$out/current.out"; then
    cp "$out/current.out" "$out/$n.out"
    echo "run $n failed: $out/$n.out"
    exit 1
  fi
done
echo "$n runs, none failed"
