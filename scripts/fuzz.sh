#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ and prints how many executions each one made.
#
#   bash scripts/fuzz.sh                  # every target, 1,000,000 runs each
#   bash scripts/fuzz.sh timer_wheel      # only the named targets
#   FUZZ_RUNS=200000 FUZZ_MAX_TIME=60 bash scripts/fuzz.sh
#
# Environment:
#   FUZZ_RUNS       executions per target (libFuzzer -runs), default 1000000
#   FUZZ_MAX_TIME   seconds per target at most (libFuzzer -max_total_time), default 240;
#                   a target that hits the cap reports the executions it reached
#   FUZZ_SANITIZER  cargo-fuzz sanitizer: address (default) or none (faster, no ASan)
#   FUZZ_TOOLCHAIN  rustup toolchain for cargo-fuzz, default nightly
#   FUZZ_ARGS       extra libFuzzer flags, e.g. "-seed=1"
#
# Needs a nightly toolchain (cargo-fuzz builds with -Zsanitizer and SanitizerCoverage);
# installs cargo-fuzz with `cargo install cargo-fuzz` when it is missing. Corpora go to
# fuzz/corpus/<target>, crash inputs to fuzz/artifacts/<target>, logs to fuzz/logs
# (all git-ignored). Exits non-zero if any target crashed or failed to build.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${FUZZ_RUNS:-1000000}
MAX_TIME=${FUZZ_MAX_TIME:-240}
SANITIZER=${FUZZ_SANITIZER:-address}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
EXTRA=${FUZZ_ARGS:-}
LOGS=fuzz/logs

if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: no '$TOOLCHAIN' toolchain (rustup toolchain install nightly); nothing fuzzed" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    cargo install cargo-fuzz
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "+$TOOLCHAIN" fuzz list --fuzz-dir fuzz)
fi

# Targets that include an example's parser (#[path]) are skipped while it is missing.
needs() {
    case "$1" in
        http_parse) echo examples/common/http_parse.rs ;;
        framing) echo examples/common/framing.rs ;;
    esac
}

mkdir -p "$LOGS"
declare -A result
failed=0
for t in "${targets[@]}"; do
    dep=$(needs "$t")
    if [ -n "$dep" ] && [ ! -f "$dep" ]; then
        result[$t]="skipped: $dep does not exist"
        continue
    fi
    echo "=== $t: build"
    if ! cargo "+$TOOLCHAIN" fuzz build --fuzz-dir fuzz -s "$SANITIZER" "$t" >"$LOGS/$t.build.log" 2>&1; then
        tail -30 "$LOGS/$t.build.log" >&2
        result[$t]="BUILD FAILED (see $LOGS/$t.build.log)"
        failed=1
        continue
    fi
    echo "=== $t: run (-runs=$RUNS -max_total_time=$MAX_TIME)"
    mkdir -p "fuzz/corpus/$t"
    status=0
    dict=""
    if [ -f "fuzz/dicts/$t.dict" ]; then dict="-dict=fuzz/dicts/$t.dict"; fi
    # shellcheck disable=SC2086
    cargo "+$TOOLCHAIN" fuzz run --fuzz-dir fuzz -s "$SANITIZER" "$t" -- \
        -runs="$RUNS" -max_total_time="$MAX_TIME" -timeout=20 -rss_limit_mb=4096 \
        -print_final_stats=1 $dict $EXTRA >"$LOGS/$t.log" 2>&1 || status=$?
    done_line=$(grep -E '^Done [0-9]+ runs in' "$LOGS/$t.log" | tail -1 || true)
    execs=$(grep -E '^stat::number_of_executed_units:' "$LOGS/$t.log" | tail -1 | awk '{print $2}' || true)
    if [ -z "$execs" ]; then
        execs=$(grep -oE '^#[0-9]+' "$LOGS/$t.log" | tail -1 | tr -d '#' || true)
    fi
    if [ "$status" -ne 0 ]; then
        crash=$(grep -E 'Test unit written to' "$LOGS/$t.log" | tail -1 || true)
        result[$t]="CRASH after ${execs:-?} executions (exit $status) ${crash}"
        grep -E -m3 "panicked at|ERROR: " "$LOGS/$t.log" >&2 || true
        failed=1
    else
        note=""
        if [ "${execs:-0}" -lt "$RUNS" ]; then note=" (time cap of ${MAX_TIME}s reached)"; fi
        result[$t]="${execs:-?} executions, no crash${note} [${done_line}]"
    fi
done

echo
echo "=== fuzz summary (sanitizer: $SANITIZER, toolchain: $TOOLCHAIN)"
for t in "${targets[@]}"; do
    printf '%-16s %s\n' "$t" "${result[$t]}"
done
exit $failed
