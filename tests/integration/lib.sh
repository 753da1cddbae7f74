# Shared helpers for integration tests (sourced). Each test gets its own short temp dir
# (sun_path is limited to 108 bytes), random free ports, and a teardown trap that kills
# every process it started and prints their logs when the test failed.
set -euo pipefail

: "${WARDEN_BUILD_DIR:?run through ctest}"
: "${WARDEN_SOURCE_DIR:?run through ctest}"
SERVER_BIN="$WARDEN_BUILD_DIR/server/warden-server"
AGENT_BIN="$WARDEN_BUILD_DIR/agent/warden-agent"
PY=/usr/bin/python3

T=$(mktemp -d /tmp/wit.XXXXXX)
chmod 755 "$T"
PIDS=()
TEST_NAME=$(basename "$0" .sh)
TEST_OK=0

teardown() {
  local rc=$?
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  if [ "$TEST_OK" != 1 ] || [ $rc -ne 0 ]; then
    echo "---- $TEST_NAME FAILED (rc=$rc); logs from $T:"
    for f in "$T"/*.log; do
      [ -f "$f" ] || continue
      echo "==== $f"
      tail -n 60 "$f"
    done
    rm -rf "$T"
    exit 1
  fi
  rm -rf "$T"
}
trap teardown EXIT

step() { echo "-- $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { TEST_OK=1; echo "PASS: $TEST_NAME"; }

# free_port: a TCP port nobody listens on right now.
free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for CMD...: retry CMD for up to 10 s (100 ms steps).
wait_for() {
  local i
  for i in $(seq 1 100); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

wait_socket() { wait_for test -S "$1" || fail "socket $1 did not appear"; }

# as_uid UID CMD...: run CMD as another user (no groups kept).
as_uid() {
  local uid=$1
  shift
  setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"
}

# expect_fail "what" CMD...: CMD must exit non-zero; its output is in $OUT.
expect_fail() {
  local what=$1
  shift
  if OUT=$("$@" 2>&1); then
    fail "$what: expected failure, got success: $OUT"
  fi
}

# expect_ok "what" CMD...: CMD must exit 0; its output is in $OUT.
expect_ok() {
  local what=$1
  shift
  if ! OUT=$("$@" 2>&1); then
    fail "$what: $OUT"
  fi
}

# assert_contains "haystack" "needle" [what]
assert_contains() {
  case "$1" in
    *"$2"*) ;;
    *) fail "${3:-output} does not contain '$2': $1" ;;
  esac
}

assert_not_contains() {
  case "$1" in
    *"$2"*) fail "${3:-output} contains '$2': $1" ;;
    *) ;;
  esac
}
