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
TEARDOWN_HOOKS=()
TEST_NAME=$(basename "$0" .sh)
TEST_OK=0

# Deadlines scale with the build: sanitizer builds run several times slower, and ctest
# runs tests side by side on few cores. WARDEN_TIME_SCALE (an integer factor) overrides;
# ctest passes WARDEN_SANITIZE from the build's configuration.
if [ -z "${WARDEN_TIME_SCALE:-}" ]; then
  if [ -n "${WARDEN_SANITIZE:-}" ]; then WARDEN_TIME_SCALE=3; else WARDEN_TIME_SCALE=1; fi
fi
case "$WARDEN_TIME_SCALE" in
  '' | *[!0-9]* | 0) echo "WARDEN_TIME_SCALE must be a positive integer" >&2; exit 1 ;;
esac

# scaled N: N seconds of deadline times WARDEN_TIME_SCALE.
scaled() { echo $(($1 * WARDEN_TIME_SCALE)); }

# now_ms: milliseconds of wall clock.
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

teardown() {
  local rc=$?
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  local h
  for h in "${TEARDOWN_HOOKS[@]:-}"; do
    [ -n "$h" ] && eval "$h" || true
  done
  # A ThreadSanitizer report does not stop a daemon, it only changes its exit status,
  # which not every test reads: a report in any log fails the test.
  local f
  for f in $(grep -ls "WARNING: ThreadSanitizer" "$T"/*.log 2>/dev/null); do
    echo "==== ThreadSanitizer report in $f"
    grep -m1 -A40 "WARNING: ThreadSanitizer" "$f"
    TEST_OK=0
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

# wait_for [-t SECONDS] CMD...: polls CMD (every 100 ms) until it succeeds, for at most
# SECONDS (default 10) times WARDEN_TIME_SCALE of wall clock. CMD checks for the event
# waited for; the deadline only bounds a wait that would otherwise hang.
wait_for() {
  local secs=10
  if [ "$1" = -t ]; then
    secs=$2
    shift 2
  fi
  local end=$(($(now_ms) + $(scaled "$secs") * 1000))
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    [ "$(now_ms)" -lt "$end" ] || return 1
    sleep 0.1
  done
}

# wait_exit PID [SECONDS]: waits until PID (a child of this shell) exits, for at most
# SECONDS (default 10) scaled; its exit status is in $EXIT_RC. Fails the test on timeout.
wait_exit() {
  local pid=$1 secs=${2:-10}
  wait_for -t "$secs" eval "! kill -0 $pid" || fail "process $pid did not exit within $(scaled "$secs") s"
  EXIT_RC=0
  wait "$pid" || EXIT_RC=$?
}

wait_socket() { wait_for test -S "$1" || fail "socket $1 did not appear"; }

# uid_copy PATH: prints the path of a copy of PATH that every user can read (and run),
# under $T/uid/ with the same relative layout as in the source or build tree (so scripts
# find their neighbours). The checkout and the build dir may be private (a clone under
# /root, any 0700 folder): whatever another uid runs or reads must come from here.
uid_copy() {
  local src=$1 rel dst
  case "$src" in
    "$WARDEN_BUILD_DIR"/*) rel=build/${src#"$WARDEN_BUILD_DIR"/} ;;
    "$WARDEN_SOURCE_DIR"/*) rel=src/${src#"$WARDEN_SOURCE_DIR"/} ;;
    *) echo "$src"; return 0 ;;
  esac
  dst="$T/uid/$rel"
  if [ ! -e "$dst" ]; then
    mkdir -p "$(dirname "$dst")"
    cp -p "$src" "$dst.tmp" && chmod a+rX "$dst.tmp" && mv "$dst.tmp" "$dst"
    chmod 755 "$T/uid"
    (cd "$T/uid" && find . -type d -exec chmod 755 {} +)
  fi
  echo "$dst"
}

# as_uid UID CMD...: run CMD as another user (no groups kept). CMD and every argument that
# names a file of the source or build tree are replaced by their uid_copy.
as_uid() {
  local uid=$1 a supp
  shift
  local args=() env=()
  for a in "$@"; do
    if [ -f "$a" ]; then args+=("$(uid_copy "$a")"); else args+=("$a"); fi
  done
  # A sanitizer that cannot read its suppressions file aborts the program.
  if [[ "${LSAN_OPTIONS:-}" == *suppressions=* ]]; then
    supp=${LSAN_OPTIONS#*suppressions=}
    supp=${supp%%:*}
    env+=("LSAN_OPTIONS=${LSAN_OPTIONS/"$supp"/"$(uid_copy "$supp")"}")
  fi
  if [[ "${TSAN_OPTIONS:-}" == *suppressions=* ]]; then
    supp=${TSAN_OPTIONS#*suppressions=}
    supp=${supp%%:*}
    env+=("TSAN_OPTIONS=${TSAN_OPTIONS/"$supp"/"$(uid_copy "$supp")"}")
  fi
  [ ${#env[@]} -eq 0 ] || env=(env "${env[@]}")
  setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "${env[@]}" "${args[@]}"
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

# ---- warden-server helpers ----

SERVER_STARTS=0

# start_server NAME [flags...]: runs `warden-server run` for trust domain ${TD:-example.org}
# with -dataDir $T/NAME.data, -socketPath $T/NAME.sock and -serverPort 0 (flags given
# override these), logging to $T/NAME.<n>.log. Waits until the node API port is logged
# and `healthcheck` passes. Sets SERVER_PID, SERVER_PORT, SERVER_SOCK, SERVER_LOG.
start_server() {
  local name=$1
  shift
  SERVER_STARTS=$((SERVER_STARTS + 1))
  SERVER_SOCK="$T/$name.sock"
  local a prev=
  for a in "$@"; do
    [ "$prev" = -socketPath ] && SERVER_SOCK=$a
    prev=$a
  done
  SERVER_LOG="$T/$name.$SERVER_STARTS.log"
  "$SERVER_BIN" run -trustDomain "${TD:-example.org}" -dataDir "$T/$name.data" \
    -socketPath "$SERVER_SOCK" -serverPort 0 "$@" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  local end=$(($(now_ms) + $(scaled 30) * 1000))
  while ! grep -q "node API listening on" "$SERVER_LOG"; do
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server $name exited: $(tail -n 5 "$SERVER_LOG")"
    [ "$(now_ms)" -lt "$end" ] || break
    sleep 0.1
  done
  SERVER_PORT=$(sed -n 's/.*node API listening on .*:\([0-9]*\)$/\1/p' "$SERVER_LOG" | tail -n 1)
  [ -n "$SERVER_PORT" ] || fail "server $name did not log its port"
  wait_for "$SERVER_BIN" healthcheck -socketPath "$SERVER_SOCK" ||
    fail "server $name is not healthy"
}

# stop_server: SIGTERM the last started server; it must exit 0 (with ASan: leak-free).
stop_server() {
  local rc=0
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || rc=$?
  [ "$rc" -eq 0 ] || fail "server exited with status $rc"
}

# wcli NOUN [VERB] ARGS...: the admin CLI against the last started server
# (-socketPath goes right after the command words).
wcli() {
  if [ "$1" = healthcheck ]; then
    "$SERVER_BIN" "$1" -socketPath "$SERVER_SOCK" "${@:2}"
  else
    "$SERVER_BIN" "$1" "$2" -socketPath "$SERVER_SOCK" "${@:3}"
  fi
}

# ---- the test node client (tests/tools/warden-test-node) ----

NODE_BIN="$WARDEN_BUILD_DIR/tests/tools/warden-test-node"

# node CMD ARGS...: the test node client against the last started server.
node() {
  local cmd=$1
  shift
  "$NODE_BIN" "$cmd" -server "127.0.0.1:$SERVER_PORT" "$@"
}

# new_entry SPIFFE_ID PARENT_ID SELECTOR [flags]: creates an entry, prints its ID.
new_entry() {
  local id=$1 parent=$2 sel=$3
  shift 3
  wcli entry create -spiffeID "$id" -parentID "$parent" -selector "$sel" "$@" |
    sed -n 's/^Entry ID *: *//p'
}

# ---- warden-agent helpers ----

AGENT_STARTS=0

# start_agent NAME [flags...]: runs `warden-agent run` for trust domain ${TD:-example.org}
# against the last started server (-serverPort $SERVER_PORT), with -dataDir $T/NAME.data
# and -socketPath $T/NAME/api.sock (flags given override these), logging to
# $T/NAME.<n>.log. Waits for the Workload API socket. Sets AGENT_PID, AGENT_SOCK,
# AGENT_LOG, AGENT_DATA.
start_agent() {
  local name=$1
  shift
  AGENT_STARTS=$((AGENT_STARTS + 1))
  AGENT_SOCK="$T/$name/api.sock"
  AGENT_DATA="$T/$name.data"
  local a prev=
  for a in "$@"; do
    [ "$prev" = -socketPath ] && AGENT_SOCK=$a
    [ "$prev" = -dataDir ] && AGENT_DATA=$a
    prev=$a
  done
  AGENT_LOG="$T/$name.$AGENT_STARTS.log"
  "$AGENT_BIN" run -trustDomain "${TD:-example.org}" -serverPort "$SERVER_PORT" \
    -dataDir "$AGENT_DATA" -socketPath "$AGENT_SOCK" "$@" >"$AGENT_LOG" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
  local end=$(($(now_ms) + $(scaled 10) * 1000))
  while [ "$(now_ms)" -lt "$end" ]; do
    [ -S "$AGENT_SOCK" ] && return 0
    kill -0 "$AGENT_PID" 2>/dev/null || fail "agent $name exited: $(tail -n 5 "$AGENT_LOG")"
    sleep 0.1
  done
  fail "agent $name: socket $AGENT_SOCK did not appear"
}

# stop_agent: SIGTERM the last started agent; it must exit 0 (with ASan: leak-free).
stop_agent() {
  local rc=0
  kill -TERM "$AGENT_PID"
  wait "$AGENT_PID" || rc=$?
  [ "$rc" -eq 0 ] || fail "agent exited with status $rc"
}

# acli ARGS...: the agent's `api` CLI against the last started agent.
acli() {
  "$AGENT_BIN" api "$@" -socketPath "$AGENT_SOCK"
}

# hget PATH: GET http://127.0.0.1:$HP/PATH (a health endpoint; no proxies, 5 s timeout):
# "<status>" on the first line, then the body.
hget() {
  "$PY" - "$HP" "$1" <<'EOF'
import sys, urllib.request, urllib.error
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    r = opener.open("http://127.0.0.1:%s%s" % (sys.argv[1], sys.argv[2]), timeout=5)
    print(r.status)
    sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)
    sys.stdout.write(e.read().decode())
EOF
}

# status_of PATH: just the HTTP status.
status_of() { hget "$1" | head -n 1; }

# metric NAME{LABELS}: the value of that series on $HP's /metrics (empty when absent).
metric() {
  hget /metrics | awk -v p="$1 " 'index($0, p) == 1 { print $NF; exit }'
}
# metric_has NAME{LABELS} VALUE, metric_at_least NAME{LABELS} N (absent counts as 0): for
# wait_for, which runs them again on every try.
metric_has() { [ "$(metric "$1")" = "$2" ]; }
metric_at_least() {
  local v
  v=$(metric "$1")
  [ "${v:-0}" -ge "$2" ]
}
# metric_is NAME{LABELS} VALUE: waits (wait_for's deadline) for the series to have that value.
metric_is() {
  wait_for metric_has "$1" "$2" || fail "$1 is '$(metric "$1")', expected $2"
}

# agent_attested: waits until the agent in $AGENT_LOG / $AGENT_DATA has attested and its
# node SVID is on disk whole (chain and key in place, no save in progress): the log line
# comes before the save.
agent_attested() {
  wait_for grep -q "Node attested as" "$AGENT_LOG" || fail "agent did not attest"
  wait_for node_identity_saved "$AGENT_DATA" || fail "the node SVID was not saved in $AGENT_DATA"
}
node_identity_saved() {
  [ -s "$1/agent_svid.pem" ] && [ -s "$1/agent_svid.key" ] && [ ! -e "$1/agent_svid.key.next" ]
}

# agent_id LOG: the node's SPIFFE ID as logged by the agent.
agent_id() {
  grep -o 'spiffe://[^ ]*/warden/agent/[^ )]*' "$1" | head -n 1
}

# store_bundle DATADIR TD: stores a federation bundle (trust domain only, no authorities)
# for TD in the datastore of the server whose -dataDir is DATADIR (running or not), as
# the federation verbs will: entries may then federate with TD.
store_bundle() {
  "$PY" -c 'import sqlite3,sys,time
td = sys.argv[2].encode()
c = sqlite3.connect(sys.argv[1], timeout=10)
c.execute("INSERT OR REPLACE INTO bundles (trust_domain, data, updated_at) VALUES (?, ?, ?)",
          (sys.argv[2], b"\x0a" + bytes([len(td)]) + td, int(time.time())))
c.commit()' "$1/datastore.sqlite3" "$2"
}
