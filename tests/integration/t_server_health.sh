#!/usr/bin/env bash
# warden-server operations: -healthAddress (/live, /ready, /metrics over loopback HTTP,
# non-loopback and busy addresses refused), the systemd watchdog and STATUS= lines on a
# fake NOTIFY_SOCKET, and SIGHUP reloads (run-time options applied, restart-only ones
# warned about, a broken file leaves the server serving its running configuration).
. "$(dirname "$0")/lib.sh"

TD=example.org
NOBODY=65534

# x509_left: seconds the X509-SVID minted now is valid for.
x509_left() {
  rm -rf "$T/m"
  wcli x509 mint -spiffeID spiffe://example.org/w -ttl 1h -write "$T/m" >/dev/null
  local end
  end=$(date -d "$(openssl x509 -in "$T/m/svid.pem" -noout -enddate | cut -d= -f2)" +%s)
  echo $((end - $(date +%s)))
}

# reload: SIGHUP, then wait until the server logged the outcome once more ($1 = the
# line to count).
reload() {
  local what=$1 before
  before=$(grep -c "$what" "$SERVER_LOG" || true)
  kill -HUP "$SERVER_PID"
  logged_more() { [ "$(grep -c "$what" "$SERVER_LOG" || true)" -gt "$before" ]; }
  wait_for logged_more || fail "no '$what' after SIGHUP"
}

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

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/pop.key" \
  -out "$T/pop.pem" -days 2 -subj /CN=site-ca -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign 2>/dev/null
cat >"$T/server.conf" <<EOF
defaultX509SVIDTTL = "2m"
logLevel = info
caTTL = "24h"
EOF

step "start with -healthAddress; READY=1 with a STATUS= line; WATCHDOG=1 every ~100 ms"
HP=$(free_port)
export NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=200000
start_server srv -config "$T/server.conf" -healthAddress "127.0.0.1:$HP"
unset NOTIFY_SOCKET WATCHDOG_USEC
grep -q "Health endpoints /live, /ready, /metrics listening on 127.0.0.1:$HP (port $HP)" \
  "$SERVER_LOG" || fail "health endpoints not logged"
wait_for grep -q "READY=1" "$T/notify.out" || fail "no READY=1"
assert_contains "$(cat "$T/notify.out")" \
  "READY=1|STATUS=Serving trust domain example.org: 0 entries, 0 agents"
W0=$(grep -c "^WATCHDOG=1|\?$" "$T/notify.out" || true)
sleep 1.5
W1=$(grep -c "^WATCHDOG=1|\?$" "$T/notify.out" || true)
[ $((W1 - W0)) -ge 4 ] || fail "only $((W1 - W0)) WATCHDOG=1 in 1.5 s with WATCHDOG_USEC=200000"

step "/live and /ready answer 200; other paths 404"
OUT=$(hget /live)
[ "$OUT" = "$(printf '200\nok')" ] || fail "/live: $OUT"
OUT=$(hget /ready)
[ "$OUT" = "$(printf '200\nready')" ] || fail "/ready: $OUT"
[ "$(status_of /nope)" = 404 ] || fail "/nope is not 404"

step "/metrics: signings after x509 mint, datastore timings, agent stream gauge"
OUT=$(hget /metrics)
assert_contains "$OUT" "# TYPE warden_server_signings_total counter"
assert_not_contains "$OUT" 'warden_server_signings_total{kind="x509_svid"}'
LEFT=$(x509_left)
[ "$LEFT" -le 120 ] && [ "$LEFT" -gt 100 ] || fail "X509-SVID lives ${LEFT}s, cap is 2m"
wcli jwt mint -spiffeID spiffe://example.org/w -audience a >/dev/null
OUT=$(hget /metrics)
assert_contains "$OUT" 'warden_server_signings_total{kind="x509_svid"} 1'
assert_contains "$OUT" 'warden_server_signings_total{kind="jwt_svid"} 1'
assert_contains "$OUT" 'warden_server_signing_seconds_count{kind="x509_svid"} 1'
assert_contains "$OUT" 'warden_server_datastore_seconds_bucket{op="count_entries",le="+Inf"}'
assert_contains "$OUT" "warden_server_agent_streams 0"
assert_contains "$(cat "$SERVER_LOG")" "admin: minted X509-SVID spiffe_id=spiffe://example.org/w serial="

step "SIGHUP: logLevel, default TTLs, adminUIDs, x509popCA applied; caTTL needs a restart"
chmod 0777 "$SERVER_SOCK"
expect_fail "nobody before the reload" as_uid $NOBODY "$SERVER_BIN" entry count -socketPath "$SERVER_SOCK"
assert_contains "$OUT" "uid $NOBODY is not an admin"
assert_not_contains "$(cat "$SERVER_LOG")" "DEBUG"
cat >"$T/server.conf" <<EOF
defaultX509SVIDTTL = "1m"
defaultJWTSVIDTTL = "90s"
logLevel = debug
caTTL = "12h"
adminUIDs = { "$NOBODY" }
x509popCA = "$T/pop.pem"
EOF
reload "Configuration reloaded"
assert_contains "$(cat "$SERVER_LOG")" "WARN server: Reload: -caTTL changed, requires restart, ignoring"
assert_contains "$(cat "$SERVER_LOG")" "Reload: -defaultX509SVIDTTL 2m -> 1m"
assert_contains "$(cat "$SERVER_LOG")" "x509pop node attestation enabled with 1 CA certificate(s) from $T/pop.pem"
wait_for grep -q "RELOADING=1|MONOTONIC_USEC=" "$T/notify.out" || fail "no RELOADING=1"
wait_for grep -q "READY=1|STATUS=Serving trust domain example.org: 0 entries, 0 agents; configuration reloaded" \
  "$T/notify.out" || fail "no STATUS= after the reload"
LEFT=$(x509_left)
[ "$LEFT" -le 60 ] && [ "$LEFT" -gt 40 ] || fail "X509-SVID lives ${LEFT}s after the reload, cap is 1m"
EXP=$(date -d "$(wcli jwt mint -spiffeID spiffe://example.org/w -audience a -ttl 1h -output json |
  "$PY" -c 'import json,sys; print(json.load(sys.stdin)["expires_at"])')" +%s)
LEFT=$((EXP - $(date +%s)))
[ "$LEFT" -le 90 ] && [ "$LEFT" -gt 80 ] || fail "JWT-SVID lives ${LEFT}s after the reload, cap is 90s"
grep -q "DEBUG server: admin: MintJWTSVID from uid 0" "$SERVER_LOG" || fail "logLevel debug not applied"
expect_ok "nobody is an admin now" as_uid $NOBODY "$SERVER_BIN" entry create -socketPath "$SERVER_SOCK" \
  -spiffeID spiffe://example.org/n -parentID spiffe://example.org/p -selector unix:uid:5
grep -q "admin: entry created entry_id=[0-9a-f]* spiffe_id=spiffe://example.org/n parent_id=spiffe://example.org/p uid=$NOBODY" \
  "$SERVER_LOG" || fail "entry creation not logged with its fields"

step "SIGHUP with a broken file: logged, the running configuration stays"
echo '{{{ not a config' >"$T/server.conf"
reload "Reload failed, keeping the running configuration"
assert_contains "$(cat "$SERVER_LOG")" "server.conf"
wait_for grep -q "reload failed, running configuration kept" "$T/notify.out" ||
  fail "no STATUS= after the failed reload"
expect_ok "still serving" wcli healthcheck
[ "$(status_of /ready)" = 200 ] || fail "not ready after a failed reload"
LEFT=$(x509_left)
[ "$LEFT" -le 60 ] && [ "$LEFT" -gt 40 ] || fail "the failed reload changed the TTL cap: ${LEFT}s"
expect_ok "nobody is still an admin" as_uid $NOBODY "$SERVER_BIN" entry count -socketPath "$SERVER_SOCK"

step "SIGHUP with an unreadable x509popCA file: refused as a whole"
cat >"$T/server.conf" <<EOF
defaultX509SVIDTTL = "3m"
x509popCA = "$T/missing.pem"
EOF
reload "Reload failed, keeping the running configuration"
assert_contains "$(cat "$SERVER_LOG")" "-x509popCA: cannot read $T/missing.pem"
LEFT=$(x509_left)
[ "$LEFT" -le 60 ] && [ "$LEFT" -gt 40 ] || fail "a refused reload changed the TTL cap: ${LEFT}s"

step "SIGTERM: STOPPING=1, the health endpoints go away with the process"
stop_server
grep -q "STOPPING=1" "$T/notify.out" || fail "no STOPPING=1"
[ "$(status_of /live 2>/dev/null || true)" != 200 ] || fail "/live still answers after exit"

step "a non-loopback -healthAddress is refused with a clear message"
rc=0
"$SERVER_BIN" run -trustDomain example.org -dataDir "$T/nl.data" -socketPath "$T/nl.sock" \
  -serverPort 0 -healthAddress "0.0.0.0:$HP" >"$T/nl.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "exit status $rc with a non-loopback -healthAddress"
assert_contains "$(cat "$T/nl.log")" \
  "Error: -healthAddress: not a loopback address (the health endpoints are unauthenticated): \"0.0.0.0:$HP\""
[ ! -e "$T/nl.data" ] || fail "data directory created before the flags were checked"

step "a busy health port stops the start with the address named"
# (SO_REUSEADDR: our earlier HTTP connections may still be in TIME_WAIT on this port.)
"$PY" - "$HP" <<'EOF' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
time.sleep(60)
EOF
BUSY=$!
PIDS+=("$BUSY")
wait_for "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$HP" ||
  fail "port blocker did not start"
rc=0
"$SERVER_BIN" run -trustDomain example.org -dataDir "$T/busy.data" -socketPath "$T/busy.sock" \
  -serverPort 0 -healthAddress "127.0.0.1:$HP" >"$T/busy.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "exit status $rc with a busy health port"
assert_contains "$(cat "$T/busy.log")" "Failed to serve the health endpoints on 127.0.0.1:$HP: Address already in use"
[ ! -e "$T/busy.sock" ] || fail "admin socket left behind"
kill "$BUSY"

pass
