#!/usr/bin/env bash
# blitz-io benchmark: the single command.
#
#   bash bench/run.sh            # full run (< 25 min): 4 rounds x 2 s, all workloads, all contenders
#   bash bench/run.sh --quick    # quick run (< 3 min): 1 round, short measurements
#   bash bench/run.sh --quick --contenders tokio-mt,tokio-ct,mio,smol --workloads echo-64-c1,http-c50
#   bash bench/run.sh --no-blitz # build without the blitz-io contender (root crate under construction)
#
# Builds the `blitz-io-bench` crate in release mode, installs wrk and strace with apt if
# they are missing, then runs the orchestrator (`bench` binary), which writes
# bench/results/REPORT.md, bench/results/*.svg and bench/results/raw.jsonl.
# Every other argument is passed to the orchestrator (`--help` lists them).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/bench/target}"
mkdir -p "$CARGO_TARGET_DIR"

NO_BLITZ=0
PASS=()
for a in "$@"; do
  case "$a" in
    --no-blitz|--no-default-features) NO_BLITZ=1 ;;
    *) PASS+=("$a") ;;
  esac
done

log() { echo "[run.sh] $*" >&2; }

# ---- tools -------------------------------------------------------------------------------
need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
# System calls are counted with perf's syscall tracepoints (strace is the fallback).
command -v perf >/dev/null 2>&1 || need_apt+=(linux-perf)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${need_apt[*]} with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}") >/tmp/bench/apt.log 2>&1 \
      || log "apt-get install failed (see /tmp/bench/apt.log); continuing without ${need_apt[*]}"
  else
    log "missing ${need_apt[*]} and cannot apt-get; continuing without them"
  fi
fi

# ---- build -------------------------------------------------------------------------------
# 1. in the workspace with the blitz contender; 2. in the workspace without it;
# 3. a detached copy of this crate (when the root manifest does not even load).
BIN=""
build_ws() { # $@: extra cargo flags
  (cd "$ROOT" && cargo build --release -p blitz-io-bench --bins "$@") >&2
}
if [ $NO_BLITZ = 0 ] && build_ws; then
  BIN="$CARGO_TARGET_DIR/release"
  log "built with the blitz contender"
elif build_ws --no-default-features; then
  BIN="$CARGO_TARGET_DIR/release"
  log "built WITHOUT the blitz contender (blitz-io does not build yet, or --no-blitz)"
else
  log "workspace build failed: building a detached copy of bench/ without blitz-io"
  DET=/tmp/bench/detached
  rm -rf "$DET" && mkdir -p "$DET"
  cp -r "$HERE/src" "$DET/src"
  # drop the path dependency on the root crate, keep the (now empty) feature, detach from the workspace
  sed -e '/^blitz-io = /d' -e 's/^blitz = \["dep:blitz-io"\]/blitz = []/' "$HERE/Cargo.toml" > "$DET/Cargo.toml"
  printf '\n[workspace]\n\n[profile.release]\ndebug = 1\n' >> "$DET/Cargo.toml"
  [ -f "$DET/Cargo.lock" ] || { [ -f "$ROOT/Cargo.lock" ] && cp "$ROOT/Cargo.lock" "$DET/Cargo.lock"; }
  if (cd "$DET" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR/detached" cargo build --release --no-default-features --bins) >&2; then
    BIN="$CARGO_TARGET_DIR/detached/release"
  else
    log "build failed"; exit 1
  fi
fi

# ---- run ---------------------------------------------------------------------------------
mkdir -p "$HERE/results"
exec "$BIN/bench" --bin-dir "$BIN" --out "$HERE/results" --repo "$ROOT" "${PASS[@]}"
