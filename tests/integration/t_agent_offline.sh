#!/bin/bash
# Server outage: while the server is stopped the agent keeps serving its cached SVIDs
# (fetch still works, JWT-SVIDs come from the cache); when the server is back (same
# data directory and port) the agent reconnects by itself and an entry created after
# the restart reaches it within seconds.
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org
PORT=$(free_port)

step "server on a fixed port, agent attested, one entry"
start_server srv -serverPort "$PORT"
wcli bundle show >"$T/roots.pem"
TOK=$(wcli token generate | sed -n 's/^Token: //p')
start_agent a1 -joinToken "$TOK" -trustBundle "$T/roots.pem"
wait_for grep -q "Node attested as" "$AGENT_LOG" || fail "agent did not attest"
AID=$(agent_id "$AGENT_LOG")
wcli entry create -spiffeID "$TDID/w1" -parentID "$AID" -selector unix:uid:0 >/dev/null
wait_for acli fetch x509 || fail "no SVID: $(acli fetch x509 2>&1)"
expect_ok "fetch x509" acli fetch x509
SERIAL=$(echo "$OUT" | sed -n 's/^Serial: *//p')
expect_ok "fetch jwt" acli fetch jwt -audience offline-aud
JWT1=$(echo "$OUT" | grep -o 'eyJ[A-Za-z0-9_.-]*' | head -n 1)
[ -n "$JWT1" ] || fail "no JWT in: $OUT"

step "stop the server: the agent keeps serving from its cache"
stop_server
wait_for grep -q "serving from cache" "$AGENT_LOG" || fail "agent did not notice the outage"
sleep 3
expect_ok "fetch x509 while the server is down" acli fetch x509
assert_contains "$OUT" "$TDID/w1"
assert_contains "$OUT" "$SERIAL" "the cached SVID"
expect_ok "cached JWT while the server is down" acli fetch jwt -audience offline-aud
assert_contains "$OUT" "$JWT1" "the cached JWT-SVID"
expect_fail "uncached JWT while the server is down" acli fetch jwt -audience other-aud
assert_contains "$OUT" "UNAVAILABLE"
kill -0 "$AGENT_PID" || fail "agent died during the outage"

step "start the server again; a new entry reaches the agent"
start_server srv -serverPort "$PORT"
wcli entry create -spiffeID "$TDID/w2" -parentID "$AID" -selector unix:uid:0 >/dev/null
T0=$(date +%s)
served_w2() { acli fetch x509 2>/dev/null | grep -q "$TDID/w2"; }
wait_for -t 30 served_w2 || fail "new entry did not reach the agent within $(scaled 30) s"
echo "new entry served $(($(date +%s) - T0)) s after it was created"
[ $(($(date +%s) - T0)) -le "$(scaled 20)" ] || fail "reconnect took longer than $(scaled 20) s"
grep -q "Connected to the server" "$AGENT_LOG" || fail "no reconnect logged"
assert_not_contains "$(cat "$AGENT_LOG")" "Attesting this node with a join token again"
expect_ok "agent list" wcli agent list
assert_contains "$OUT" "Found 1 attested agent"
stop_agent
stop_server
pass
