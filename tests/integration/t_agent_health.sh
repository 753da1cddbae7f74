#!/usr/bin/env bash
# warden-agent operations: -healthAddress (/live, /ready through "not attested yet", "no
# sync yet" and ready, /metrics with Workload API calls by method and code, open
# streams, attestations, SVIDs issued and rotated, cache sizes, sync reconnects), the
# STATUS= lines on a fake NOTIFY_SOCKET, key=value event logs (refusals rate-limited per
# uid), SIGHUP reloads (logLevel and workloadKeyType applied, restart-only options
# warned about, a broken file leaves the agent serving), non-loopback addresses refused,
# and ExecReload= in both units.
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org
NOBODY=4243

is_ready() { [ "$(status_of /ready)" = 200 ]; }
is_live() { [ "$(status_of /live)" = 200 ]; }

# reload WHAT: SIGHUP the agent, wait until WHAT was logged once more.
reload() {
  local what=$1 before
  before=$(grep -c "$what" "$AGENT_LOG" || true)
  kill -HUP "$AGENT_PID"
  logged_more() { [ "$(grep -c "$what" "$AGENT_LOG" || true)" -gt "$before" ]; }
  wait_for logged_more || fail "no '$what' after SIGHUP"
}

step "ExecReload= in both units"
for u in warden-agent warden-server; do
  grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$WARDEN_BUILD_DIR/systemd/$u.service" ||
    fail "$u.service has no ExecReload="
done

step "fake NOTIFY_SOCKET"
"$PY" - "$T/notify.sock" "$T/notify.out" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(4096).decode().replace("\n", "|") + "\n")
        f.flush()
EOF
PIDS+=($!)
wait_socket "$T/notify.sock"

step "server on a fixed port; an agent that cannot reach it is not ready: not attested yet"
SP=$(free_port)
start_server srv -serverPort "$SP"
wcli bundle show >"$T/roots.pem"
HP=$(free_port)
DEAD=$(free_port)
export NOTIFY_SOCKET="$T/notify.sock"
start_agent a0 -serverPort "$DEAD" -joinToken nope -trustBundle "$T/roots.pem" \
  -healthAddress "127.0.0.1:$HP"
grep -q "Health endpoints /live, /ready, /metrics listening on 127.0.0.1:$HP (port $HP)" \
  "$AGENT_LOG" || fail "health endpoints not logged"
wait_for grep -q "READY=1|STATUS=Attesting" "$T/notify.out" || fail "no STATUS=Attesting"
OUT=$(hget /live)
[ "$OUT" = "$(printf '200\nok')" ] || fail "/live: $OUT"
OUT=$(hget /ready)
[ "$OUT" = "$(printf '503\nnot ready: not attested yet')" ] || fail "/ready: $OUT"
stop_agent
[ "$(status_of /live 2>/dev/null || true)" != 200 ] || fail "/live still answers after exit"
: >"$T/notify.out"

step "the real agent: ready once attested and synced; STATUS= says what it serves"
cat >"$T/agent.conf" <<EOF
serverAddress = "127.0.0.1"
logLevel = info
EOF
TOK=$(wcli token generate | sed -n 's/^Token: //p')
export WATCHDOG_USEC=200000
start_agent a1 -config "$T/agent.conf" -serverPort "$SP" -joinToken "$TOK" \
  -trustBundle "$T/roots.pem" -healthAddress "127.0.0.1:$HP"
unset WATCHDOG_USEC
# Pings every 100 ms (half of WATCHDOG_USEC): 4 more take 0.4 s; 3 s (scaled) leaves room
# for a loaded machine, and pings only every second or slower would still miss it.
watchdogs() { grep -c "^WATCHDOG=1|\?$" "$T/notify.out" || true; }
watchdogs_reach() { [ "$(watchdogs)" -ge "$1" ]; }
W0=$(watchdogs)
wait_for -t 3 watchdogs_reach $((W0 + 4)) ||
  fail "only $(($(watchdogs) - W0)) WATCHDOG=1 in 3 s with WATCHDOG_USEC=200000"
wait_for is_ready || fail "/ready: $(hget /ready)"
OUT=$(hget /ready)
[ "$OUT" = "$(printf '200\nready')" ] || fail "/ready: $OUT"
grep -q "Node attested as spiffe://example.org/warden/agent/join_token/[^ ]* method=join_token expires=" \
  "$AGENT_LOG" || fail "attestation not logged with its fields"
AID=$(agent_id "$AGENT_LOG")
grep -q "Connected to the server, sync stream open server=127.0.0.1:$SP agent_id=$AID" "$AGENT_LOG" ||
  fail "sync connection not logged with its fields"
wcli entry create -spiffeID "$TDID/w/root" -parentID "$AID" -selector unix:uid:0 >/dev/null
wait_for grep -q "STATUS=Serving 1 SVIDs for 1 entries (server connected)" "$T/notify.out" ||
  fail "no STATUS= with the SVID count: $(cat "$T/notify.out")"
grep -q "X509-SVID issued entry_id=[0-9a-f-]* spiffe_id=$TDID/w/root serial=[0-9a-f]* expires=20[0-9-]*T[0-9:]*Z" \
  "$AGENT_LOG" || fail "SVID issue not logged with its fields"

step "/metrics: FetchX509SVID OK, attestations, SVIDs issued, cache sizes"
OUT=$(hget /metrics)
assert_contains "$OUT" "# TYPE warden_workload_api_calls_total counter"
assert_not_contains "$OUT" 'warden_workload_api_calls_total{method="FetchX509SVID",code="OK"}'
expect_ok "fetch x509" acli fetch x509
assert_contains "$OUT" "$TDID/w/root"
metric_is 'warden_workload_api_calls_total{method="FetchX509SVID",code="OK"}' 1
OUT=$(hget /metrics)
assert_contains "$OUT" 'warden_workload_api_call_seconds_count{method="FetchX509SVID"} 1'
assert_contains "$OUT" 'warden_workload_attestations_total{result="ok"} 1'
# One attestation per connection, each timed (a probe that connected and left at once
# counts as result="gone").
ATT=$(echo "$OUT" | awk '/^warden_workload_attestations_total/ {s += $2} END {print s}')
assert_contains "$OUT" "warden_workload_attestation_seconds_count $ATT"
assert_contains "$OUT" 'warden_agent_svids_issued_total 1'
assert_contains "$OUT" 'warden_agent_svids_rotated_total 0'
assert_contains "$OUT" 'warden_agent_svid_cache_entries 1'
assert_contains "$OUT" 'warden_agent_jwt_cache_entries 0'
assert_contains "$OUT" 'warden_agent_sync_reconnects_total 0'
expect_ok "fetch jwt" acli fetch jwt -audience health-aud
metric_is 'warden_workload_api_calls_total{method="FetchJWTSVID",code="OK"}' 1
metric_is 'warden_agent_svids_issued_total' 2
metric_is 'warden_agent_jwt_cache_entries' 1
grep -q "JWT-SVID issued entry_id=[0-9a-f-]* spiffe_id=$TDID/w/root jti=[A-Za-z0-9_-]* audiences=1 expires=" \
  "$AGENT_LOG" || fail "JWT-SVID issue not logged with its fields"
assert_not_contains "$(cat "$AGENT_LOG")" "eyJ" "the agent log (a token)"

step "a uid without entries: PERMISSION_DENIED counted and logged with method, pid, uid"
expect_fail "uid without entry" as_uid $NOBODY "$AGENT_BIN" api fetch x509 -socketPath "$AGENT_SOCK"
assert_contains "$OUT" "PERMISSION_DENIED"
metric_is 'warden_workload_api_calls_total{method="FetchX509SVID",code="PERMISSION_DENIED"}' 1
grep -q "INFO agent: Workload API call refused method=FetchX509SVID pid=[0-9]* uid=$NOBODY status=PERMISSION_DENIED$" \
  "$AGENT_LOG" || fail "refusal not logged with its fields"

step "refusals from one uid: at most one line a second, the rest counted as suppressed"
sleep 1.1
BURST=()
for i in 1 2 3 4 5 6; do
  as_uid $NOBODY "$AGENT_BIN" api fetch jwt -audience a -socketPath "$AGENT_SOCK" >/dev/null 2>&1 &
  BURST+=($!)
done
for p in "${BURST[@]}"; do wait "$p" || true; done
metric_is 'warden_workload_api_calls_total{method="FetchJWTSVID",code="PERMISSION_DENIED"}' 6
sleep 1.1
expect_fail "one more refusal" as_uid $NOBODY "$AGENT_BIN" api fetch jwt -audience a -socketPath "$AGENT_SOCK"
metric_is 'warden_workload_api_calls_total{method="FetchJWTSVID",code="PERMISSION_DENIED"}' 7
N=$(grep -c "method=FetchJWTSVID pid=[0-9]* uid=$NOBODY status=PERMISSION_DENIED" "$AGENT_LOG" || true)
[ "$N" -lt 7 ] || fail "$N refusal lines for 7 calls"
grep -q "method=FetchJWTSVID pid=[0-9]* uid=$NOBODY status=PERMISSION_DENIED suppressed=[1-9]" \
  "$AGENT_LOG" || fail "no suppressed= count on a later line"

step "healthcheck by a uid without entries: healthy, no Workload API call counted"
BEFORE=$(hget /metrics | grep -c 'code="PERMISSION_DENIED"' || true)
expect_ok "healthcheck as nobody" as_uid $NOBODY "$AGENT_BIN" healthcheck -socketPath "$AGENT_SOCK"
assert_contains "$OUT" "Agent is healthy."
expect_ok "healthcheck json" as_uid $NOBODY "$AGENT_BIN" healthcheck -socketPath "$AGENT_SOCK" \
  -output json
[ "$(echo "$OUT" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["healthy"], d["status"])')" = "True SERVING" ] ||
  fail "healthcheck json: $OUT"
expect_fail "healthcheck of a missing socket" "$AGENT_BIN" healthcheck -socketPath "$T/none.sock" \
  -output json
assert_contains "$OUT" '"healthy": false'
assert_contains "$OUT" '"status": "UNREACHABLE"'
[ "$(hget /metrics | grep -c 'code="PERMISSION_DENIED"' || true)" = "$BEFORE" ] ||
  fail "a healthcheck was counted as a refused Workload API call"
assert_not_contains "$(hget /metrics)" 'method="Check"'

step "open streams: 1 while api watch runs, 0 after"
"$AGENT_BIN" api watch -socketPath "$AGENT_SOCK" >"$T/watch.out" 2>&1 &
WATCH=$!
PIDS+=("$WATCH")
metric_is 'warden_workload_api_open_streams{method="FetchX509SVID"}' 1
kill -TERM "$WATCH"
wait "$WATCH" || true
metric_is 'warden_workload_api_open_streams{method="FetchX509SVID"}' 0

step "server restart: the agent reconnects and counts it"
stop_server
wait_for grep -q "Sync stream lost, serving from cache; retrying server=127.0.0.1:$SP" "$AGENT_LOG" ||
  fail "lost stream not logged"
wait_for grep -q "STATUS=Serving 1 SVIDs for 1 entries (server unreachable, serving from cache)" \
  "$T/notify.out" || fail "no STATUS= for the outage"
OUT=$(hget /ready)
[ "$OUT" = "$(printf '200\nready')" ] || fail "/ready while serving from cache: $OUT"
unset NOTIFY_SOCKET # the server's own STATUS= lines would mix in
start_server srv -serverPort "$SP"
export NOTIFY_SOCKET="$T/notify.sock"
wait_for -t 30 metric_has warden_agent_sync_reconnects_total 1 || fail "no reconnect counted"

step "SIGHUP: logLevel and workloadKeyType applied, serverAddress needs a restart"
assert_not_contains "$(cat "$AGENT_LOG")" "DEBUG"
cat >"$T/agent.conf" <<EOF
serverAddress = "localhost"
logLevel = debug
workloadKeyType = "ec-p384"
EOF
: >"$T/notify.out"
reload "Configuration reloaded"
assert_contains "$(cat "$AGENT_LOG")" "WARN agent: Reload: -serverAddress changed, requires restart, ignoring"
assert_contains "$(cat "$AGENT_LOG")" "Reload: -logLevel debug"
assert_contains "$(cat "$AGENT_LOG")" "Reload: -workloadKeyType ec-p384 (for SVIDs signed from now on)"
assert_not_contains "$(cat "$AGENT_LOG")" "Reload: -joinToken"
wait_for grep -q "RELOADING=1|MONOTONIC_USEC=" "$T/notify.out" || fail "no RELOADING=1"
wait_for grep -q "READY=1|STATUS=Serving 1 SVIDs for 1 entries (server connected)" "$T/notify.out" ||
  fail "no READY=1 with STATUS= after the reload: $(cat "$T/notify.out")"
wcli entry create -spiffeID "$TDID/w/p384" -parentID "$AID" -selector unix:uid:0 >/dev/null
wait_for grep -q "DEBUG agent: Sync applied: 2 entries" "$AGENT_LOG" || fail "logLevel debug not applied"
wait_for grep -q "X509-SVID issued entry_id=[0-9a-f-]* spiffe_id=$TDID/w/p384" "$AGENT_LOG" ||
  fail "no SVID for the new entry"
rm -rf "$T/x"
expect_ok "fetch both" acli fetch x509 -write "$T/x"
FOUND=
for f in "$T"/x/svid.*.pem; do
  TXT=$(openssl x509 -in "$f" -noout -text)
  case "$TXT" in
    *"URI:$TDID/w/p384"*) FOUND=$f
      assert_contains "$TXT" "NIST CURVE: P-384" "the new entry's SVID" ;;
    *"URI:$TDID/w/root"*) assert_contains "$TXT" "NIST CURVE: P-256" "the old entry's SVID" ;;
  esac
done
[ -n "$FOUND" ] || fail "no SVID for $TDID/w/p384 written"

step "SIGHUP with a broken file: logged, the running configuration stays"
echo '{{{ not a config' >"$T/agent.conf"
reload "Reload failed, keeping the running configuration"
assert_contains "$(cat "$AGENT_LOG")" "agent.conf"
expect_ok "still serving" acli fetch x509
assert_contains "$OUT" "$TDID/w/p384"
[ "$(status_of /ready)" = 200 ] || fail "not ready after a failed reload"
wcli entry create -spiffeID "$TDID/w/more" -parentID "$AID" -selector unix:uid:0 >/dev/null
wait_for grep -q "DEBUG agent: Sync applied: 3 entries" "$AGENT_LOG" ||
  fail "the failed reload changed the log level"

step "SIGTERM: Shutting down, STOPPING=1"
stop_agent
grep -q "STOPPING=1|STATUS=Shutting down" "$T/notify.out" || fail "no STOPPING=1 with STATUS="
unset NOTIFY_SOCKET

step "restart while the server is down: attested from disk, not ready: no sync yet"
stop_server
start_agent a1 -serverPort "$SP" -healthAddress "127.0.0.1:$HP"
wait_for is_live || fail "/live after restart"
OUT=$(hget /ready)
[ "$OUT" = "$(printf '503\nnot ready: no sync yet')" ] || fail "/ready without a sync: $OUT"
stop_agent

step "a non-loopback -healthAddress is refused with a clear message"
rc=0
"$AGENT_BIN" run -trustDomain example.org -dataDir "$T/nl.data" -socketPath "$T/nl/api.sock" \
  -joinToken x -trustBundle "$T/roots.pem" -healthAddress "0.0.0.0:$HP" >"$T/nl.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "exit status $rc with a non-loopback -healthAddress"
assert_contains "$(cat "$T/nl.log")" \
  "Error: -healthAddress: not a loopback address (the health endpoints are unauthenticated): \"0.0.0.0:$HP\""
[ ! -e "$T/nl.data" ] || fail "data directory created before the flags were checked"

pass
