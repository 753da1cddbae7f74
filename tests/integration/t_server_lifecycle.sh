#!/usr/bin/env bash
# warden-server run: sd_notify READY/STOPPING, signals, the config file (and the shipped
# example), directories it creates, TTL caps, CA key types and an upstream CA.
. "$(dirname "$0")/lib.sh"

TD=example.org
json() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

step "sd_notify: READY=1 once serving, STOPPING=1 on SIGTERM"
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
export NOTIFY_SOCKET="$T/notify.sock"
start_server srv -socketPath "$T/run/deep/admin.sock"
unset NOTIFY_SOCKET
wait_for grep -q "READY=1" "$T/notify.out" || fail "no READY=1"
assert_contains "$(cat "$T/notify.out")" "READY=1|STATUS=Serving trust domain example.org: 0 entries, 0 agents"
[ "$(stat -c %a "$T/run/deep")" = 755 ] || fail "socket directory not created 0755"
[ "$(stat -c %a "$T/srv.data")" = 700 ] || fail "dataDir not 0700"

step "SIGHUP reloads (nothing changed here); SIGTERM stops cleanly with STOPPING=1"
kill -HUP "$SERVER_PID"
wait_for grep -q "Configuration reloaded" "$SERVER_LOG" || fail "HUP not logged"
wait_for grep -q "STATUS=.*; configuration reloaded" "$T/notify.out" || fail "no STATUS after reload"
assert_contains "$(cat "$T/notify.out")" "RELOADING=1|MONOTONIC_USEC="
assert_not_contains "$(cat "$SERVER_LOG")" "requires restart"
expect_ok "still serving after HUP" wcli healthcheck
stop_server
grep -q "STOPPING=1" "$T/notify.out" || fail "no STOPPING=1"
grep -q "Received SIGTERM, shutting down" "$SERVER_LOG" || fail "SIGTERM not logged"
[ ! -e "$SERVER_SOCK" ] || fail "admin socket left behind"

step "SIGINT stops cleanly too; no notifications without NOTIFY_SOCKET"
NOTES=$(wc -l <"$T/notify.out")
start_server srv2
kill -INT "$SERVER_PID"
rc=0
wait "$SERVER_PID" || rc=$?
[ $rc -eq 0 ] || fail "exit status $rc after SIGINT"
grep -q "Received SIGINT, shutting down" "$SERVER_LOG" || fail "SIGINT not logged"
[ "$(wc -l <"$T/notify.out")" = "$NOTES" ] || fail "notifications without NOTIFY_SOCKET"

step "config file: the shipped example parses; flags win over the file"
start_server example -config "$WARDEN_SOURCE_DIR/conf/server.conf.example"
[ "$(wcli healthcheck -output json | json 'd["trust_domain"]')" = example.org ] || fail "example"
stop_server
cat >"$T/server.conf" <<EOF
trustDomain = "file.test"       # overridden by the -trustDomain flag of start_server
defaultX509SVIDTTL = "2m"
defaultJWTSVIDTTL = 90
logLevel = debug
EOF
start_server conf -config "$T/server.conf"
[ "$(wcli healthcheck -output json | json 'd["trust_domain"]')" = example.org ] || fail "flag did not win"
grep -q "DEBUG" "$SERVER_LOG" || fail "logLevel from the file not applied"

step "default TTLs are caps"
wcli x509 mint -spiffeID spiffe://example.org/w -ttl 1h -write "$T/m" >/dev/null
END=$(date -d "$(openssl x509 -in "$T/m/svid.pem" -noout -enddate | cut -d= -f2)" +%s)
LEFT=$((END - $(date +%s)))
[ $LEFT -le 120 ] && [ $LEFT -gt 100 ] || fail "X509-SVID lives ${LEFT}s, cap is 2m"
EXP=$(date -d "$(wcli jwt mint -spiffeID spiffe://example.org/w -audience a -ttl 1h -output json | json 'd["expires_at"]')" +%s)
LEFT=$((EXP - $(date +%s)))
[ $LEFT -le 90 ] && [ $LEFT -gt 80 ] || fail "JWT-SVID lives ${LEFT}s, cap is 90s"
EXP=$(date -d "$(wcli jwt mint -spiffeID spiffe://example.org/w -audience a -ttl 30 -output json | json 'd["expires_at"]')" +%s)
LEFT=$((EXP - $(date +%s)))
[ $LEFT -le 30 ] && [ $LEFT -gt 20 ] || fail "JWT-SVID lives ${LEFT}s, asked for 30s"
stop_server

step "CA key types"
start_server p384 -caKeyType ec-p384
assert_contains "$(wcli bundle show | openssl x509 -noout -text)" "NIST CURVE: P-384"
assert_contains "$(wcli bundle show -format spiffe)" '"crv": "P-384"'
stop_server
start_server rsa -caKeyType rsa-2048
assert_contains "$(wcli bundle show | openssl x509 -noout -text)" "Public-Key: (2048 bit)"
wcli jwt mint -spiffeID spiffe://example.org/w -audience a | cut -d. -f1 |
  "$PY" -c 'import base64,json,sys; s=sys.stdin.read().strip(); h=json.loads(base64.urlsafe_b64decode(s+"="*(-len(s)%4))); assert h["alg"]=="RS256", h' ||
  fail "JWT alg with an RSA key"
stop_server

step "upstream CA: the bundle is the upstream root, SVID chains carry our intermediate"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/up.key" \
  -out "$T/up.pem" -days 2 -subj /CN=upstream -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
chmod 600 "$T/up.key"
start_server up -upstreamCA "$T/up.pem,$T/up.key"
cmp <(openssl x509 -in "$T/up.pem" -noout -fingerprint) \
  <(wcli bundle show | openssl x509 -noout -fingerprint) || fail "bundle is not the upstream root"
wcli x509 mint -spiffeID spiffe://example.org/w -write "$T/u" >/dev/null
[ "$(grep -c 'BEGIN CERTIFICATE' "$T/u/svid.pem")" = 2 ] || fail "chain without intermediate"
openssl verify -CAfile "$T/up.pem" -untrusted "$T/u/svid.pem" "$T/u/svid.pem" ||
  fail "SVID does not chain to the upstream root"
stop_server

pass
