#!/usr/bin/env bash
# Runs blitz-io's unit and integration tests (no doctests) under AddressSanitizer and
# ThreadSanitizer, on nightly with a sanitized std (-Zbuild-std).
#
#   bash scripts/sanitize.sh              # both sanitizers
#   bash scripts/sanitize.sh address      # one of: address, thread
#   SANITIZE_TEST_THREADS=1 bash scripts/sanitize.sh thread
#
# Needs the nightly toolchain; installs its rust-src component (for -Zbuild-std) if it is
# missing. Target directories: target/sanitize/<sanitizer> (override the root with
# SANITIZE_TARGET_DIR). Exits non-zero if any sanitizer run fails; prints a summary line
# per sanitizer and a closing "N passed, N failed" line (sanitizer runs, not tests).
#
# Runs every tests/*.rs target (including the load tests, the python3 interop tests and
# the `unshare --net` multicast test, which all pass under both sanitizers). Skipped:
#   * tests/examples.rs, the `example_*` tests: they run a nested `cargo build --example`
#     and look for the binary in target/<profile>/, which does not exist under
#     --target/-Zbuild-std (the nested build fails: "cargo build --example NAME failed");
#     the example binaries would not be instrumented anyway. The parser tests in the
#     same file run. The examples run natively in `cargo test --workspace`.
#   * Extra filters: SANITIZE_SKIP="name1 name2" adds `--skip` filters.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-gnu
TOOLCHAIN=${SANITIZE_TOOLCHAIN:-nightly}
ROOT_DIR=${SANITIZE_TARGET_DIR:-target/sanitize}
SANITIZERS=("$@")
[ ${#SANITIZERS[@]} -eq 0 ] && SANITIZERS=(address thread)

if ! cargo +"$TOOLCHAIN" --version >/dev/null 2>&1; then
  echo "sanitize.sh: the $TOOLCHAIN toolchain is not installed (rustup toolchain install $TOOLCHAIN)" >&2
  exit 2
fi

build_std=(-Zbuild-std)
if ! rustup +"$TOOLCHAIN" component list --installed 2>/dev/null | grep -q '^rust-src'; then
  echo "sanitize.sh: installing rust-src for $TOOLCHAIN (needed by -Zbuild-std)"
  if ! rustup +"$TOOLCHAIN" component add rust-src; then
    echo "sanitize.sh: rust-src unavailable: ThreadSanitizer needs it and is skipped;" \
      "AddressSanitizer runs against an uninstrumented std" >&2
    build_std=()
  fi
fi

# Unit tests and every integration test target; no doctests.
test_args=(--lib)
for f in tests/*.rs; do
  test_args+=(--test "$(basename "$f" .rs)")
done

skips=(
  --skip example_ # examples.rs: nested `cargo build --example`, then execs the binary
)
for s in ${SANITIZE_SKIP:-}; do
  skips+=(--skip "$s")
done

passed=0
failed=0
summary=()
for san in "${SANITIZERS[@]}"; do
  case "$san" in
    address | thread) ;;
    *)
      echo "sanitize.sh: unknown sanitizer '$san' (address or thread)" >&2
      exit 2
      ;;
  esac
  if [ "$san" = thread ] && [ ${#build_std[@]} -eq 0 ]; then
    summary+=("thread: SKIPPED (no rust-src for -Zbuild-std)")
    continue
  fi
  flags="-Zsanitizer=$san -Cdebuginfo=1"
  if [ ${#build_std[@]} -eq 0 ]; then
    # The prebuilt std is not sanitized: allow the ABI mismatch (ASan only).
    flags="$flags -Cunsafe-allow-abi-mismatch=sanitizer"
  fi
  if [ "$san" = address ]; then
    # Schedulers do not recycle task allocations in this build (src/task/cache.rs,
    # "Checkers"): a recycled block would hide a use-after-free of a task from ASan.
    flags="$flags --cfg blitz_no_task_cache"
    # Stack use-after-return detection; leak checking stays on (LSan is part of ASan).
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=1:detect_leaks=1}
  else
    # A report fails the run (exit code 66) but lets the rest of the test binary finish
    # so that one run shows every race; second_deadlock_stack for lock-order reports.
    #
    # One suppression: crossbeam-deque's Chase-Lev buffer. A stealer reads a slot with
    # read_volatile *before* claiming it with a CAS and discards the value if the CAS
    # fails, so the owner's concurrent push may overwrite the slot being read. That is
    # the algorithm's documented, intentional race on a MaybeUninit (crossbeam#589,
    # crossbeam#646, rust-lang/unsafe-code-guidelines#531), not a bug in blitz-io; the
    # suppression matches only those two buffer accessors.
    supp="$ROOT_DIR/tsan-suppressions.txt"
    mkdir -p "$ROOT_DIR"
    printf '%s\n' \
      'race:crossbeam_deque::deque::Buffer*::read' \
      'race:crossbeam_deque::deque::Buffer*::write' >"$supp"
    export TSAN_OPTIONS=${TSAN_OPTIONS:-second_deadlock_stack=1 suppressions=$(realpath "$supp")}
  fi
  echo
  echo "=== $san sanitizer (RUSTFLAGS=\"$flags\", ${build_std[*]:-no build-std})"
  start=$(date +%s)
  log="$ROOT_DIR/$san.log"
  mkdir -p "$ROOT_DIR"
  set +e
  RUSTFLAGS="$flags" RUSTDOCFLAGS="$flags" CARGO_TARGET_DIR="$ROOT_DIR/$san" \
    cargo +"$TOOLCHAIN" test --no-fail-fast -p blitz-io "${build_std[@]}" --target "$TARGET" "${test_args[@]}" \
    -- --test-threads="${SANITIZE_TEST_THREADS:-2}" "${skips[@]}" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  secs=$(($(date +%s) - start))
  reports=$(grep -c -E '^(==[0-9]+==ERROR: AddressSanitizer|WARNING: ThreadSanitizer|==[0-9]+==ERROR: LeakSanitizer)' "$log" || true)
  tests_ok=$(grep -E '^test result:' "$log" | awk '{s += $4} END {print s + 0}')
  tests_failed=$(grep -E '^test result:' "$log" | awk '{s += $6} END {print s + 0}')
  if [ "$rc" -eq 0 ] && [ "$reports" -eq 0 ]; then
    passed=$((passed + 1))
    summary+=("$san: PASS in ${secs}s ($tests_ok tests passed, 0 sanitizer reports)")
  else
    failed=$((failed + 1))
    summary+=("$san: FAIL in ${secs}s (exit $rc, $tests_ok passed, $tests_failed failed, $reports sanitizer reports; log $log)")
  fi
done

echo
echo "=== summary"
for line in "${summary[@]}"; do
  echo "$line"
done
echo "sanitizers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
