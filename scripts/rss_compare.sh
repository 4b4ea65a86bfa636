#!/usr/bin/env bash
# Resident memory per held TCP connection: blitz-io vs tokio, same run, release build.
#
#   bash scripts/rss_compare.sh              # 10,000 connections per runtime
#   RSS_CONNS=5000 bash scripts/rss_compare.sh
#
# For each runtime, starts `hold server --rt <rt>` (a 2-worker multi-thread runtime:
# one task per connection, one 32-byte echo round trip, then parked in a read) and a
# separate client process (`hold client`, tokio current-thread, the same for both) that
# opens the connections on 127.0.0.1 and keeps them open. The server reports its own
# VmRSS before accepting and with every connection held; the table shows the delta and
# delta / N. Both processes raise RLIMIT_NOFILE's soft limit (N + 256 descriptors each).
#
# Environment:
#   RSS_CONNS         connections per runtime, default 10000
#   CARGO_TARGET_DIR  build directory, default /tmp/rss_compare/target
set -euo pipefail
cd "$(dirname "$0")/.."

N=${RSS_CONNS:-10000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/rss_compare/target}"

cargo build --release -q -p blitz-io-bench --bin hold
HOLD="$CARGO_TARGET_DIR/release/hold"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# wait_line FILE PATTERN SECONDS: prints the first line of FILE matching PATTERN.
wait_line() {
  local end=$((SECONDS + $3))
  while ((SECONDS < end)); do
    if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "rss_compare: timed out waiting for /$2/ in $1:" >&2
  cat "$1" >&2
  return 1
}

ROWS=()
for rt in blitz tokio; do
  "$HOLD" server --rt "$rt" --conns "$N" >"$WORK/$rt.server" 2>&1 &
  spid=$!
  PIDS+=("$spid")
  addr=$(wait_line "$WORK/$rt.server" '^READY ' 20 | awk '{print $2}')

  # The client holds its connections until its stdin (a fifo we keep open) closes.
  mkfifo "$WORK/$rt.stdin"
  "$HOLD" client --addr "$addr" --conns "$N" <"$WORK/$rt.stdin" >"$WORK/$rt.client" 2>&1 &
  cpid=$!
  PIDS+=("$cpid")
  exec 9>"$WORK/$rt.stdin"

  wait_line "$WORK/$rt.client" '^CLIENT_HELD ' 120 >/dev/null
  held=$(wait_line "$WORK/$rt.server" '^HELD ' 60)
  # External cross-check of the server's RSS while everything is held.
  ext=$(awk '/^VmRSS:/ {print $2}' "/proc/$spid/status")

  exec 9>&- # client exits and closes its connections, then the server exits
  wait "$cpid"
  wait "$spid"
  ROWS+=("$rt $held ext_kib=$ext")
done

echo
echo "RSS per held connection, N=$N, server = 2-worker multi-thread runtime (release build)"
printf '%-8s %8s %12s %12s %12s %14s %22s\n' runtime conns "base (KiB)" "held (KiB)" "delta (KiB)" "per conn (B)" "held, /proc/PID (KiB)"
for row in "${ROWS[@]}"; do
  rt=${row%% *}
  get() { sed -E "s/.*$1=([0-9.]+).*/\1/" <<<"$row"; }
  base=$(get base_kib)
  held=$(get held_kib)
  printf '%-8s %8s %12s %12s %12s %14s %22s\n' "$rt" "$(get conns)" "$base" "$held" "$((held - base))" \
    "$(get per_conn_bytes)" "$(get ext_kib)"
done
