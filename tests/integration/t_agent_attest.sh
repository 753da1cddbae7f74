#!/bin/bash
# The agent daemon's node attestation: a join token, then a workload fetch; the node
# SVID, key and bundle persisted 0600; a restart WITHOUT a token re-uses the persisted
# node SVID (same agent ID, no new attestation, one agent on the server); eviction;
# x509pop; clear errors for an agent that cannot attest (no token, a used token).
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org

step "server, bundle, join token"
start_server srv
wcli bundle show >"$T/roots.pem"
TOK=$(wcli token generate | sed -n 's/^Token: //p')
[ -n "$TOK" ] || fail "no token"

step "attest with the join token"
start_agent a1 -joinToken "$TOK" -trustBundle "$T/roots.pem"
agent_attested
AID=$(agent_id "$AGENT_LOG")
[ "$AID" = "$TDID/warden/agent/join_token/$TOK" ] || fail "unexpected agent ID $AID"
for f in agent_svid.pem agent_svid.key bundle.json; do
  [ -f "$AGENT_DATA/$f" ] || fail "$f not persisted"
  [ "$(stat -c %a "$AGENT_DATA/$f")" = 600 ] || fail "$f mode $(stat -c %a "$AGENT_DATA/$f")"
done
[ "$(stat -c %a "$AGENT_DATA")" = 700 ] || fail "dataDir mode $(stat -c %a "$AGENT_DATA")"
[ "$(openssl x509 -in "$AGENT_DATA/agent_svid.pem" -noout -ext subjectAltName |
  grep -o 'URI:[^, ]*')" = "URI:$AID" ] || fail "node SVID does not carry $AID"
grep -q '"spiffe_sequence"' "$AGENT_DATA/bundle.json" || fail "bundle.json has no sequence"

step "no entry yet: the Workload API answers, the caller has no identity"
expect_fail "fetch without entry" acli fetch x509
assert_contains "$OUT" "PERMISSION_DENIED" "fetch without entry"

step "an entry for uid 0 reaches the agent and is fetched"
wcli entry create -spiffeID "$TDID/w1" -parentID "$AID" -selector unix:uid:0 >/dev/null
wait_for acli fetch x509 || fail "no SVID for the new entry: $(acli fetch x509 2>&1)"
expect_ok "fetch x509" acli fetch x509 -write "$T/out1"
assert_contains "$OUT" "$TDID/w1"
expect_ok "svid verifies" openssl verify -CAfile "$T/roots.pem" "$T/out1/svid.0.pem"
expect_ok "fetch jwt" acli fetch jwt -audience test-aud
assert_contains "$OUT" "$TDID/w1"
SERIAL1=$(openssl x509 -in "$AGENT_DATA/agent_svid.pem" -noout -serial)

step "restart without a token: the persisted node SVID is used"
stop_agent
start_agent a1
wait_for acli fetch x509 || fail "no SVID after restart: $(tail -n 5 "$AGENT_LOG")"
assert_contains "$(cat "$AGENT_LOG")" "Using the node SVID of $AID"
assert_not_contains "$(cat "$AGENT_LOG")" "Attesting" "agent log after restart"
expect_ok "agent list" wcli agent list
assert_contains "$OUT" "Found 1 attested agent"
assert_contains "$OUT" "$AID"
[ "$(openssl x509 -in "$AGENT_DATA/agent_svid.pem" -noout -serial)" = "$SERIAL1" ] ||
  fail "node SVID changed although it was far from half-life"

step "evicted: the running agent (no token to attest again) stops with a clear error"
expect_ok "evict" wcli agent evict -spiffeID "$AID"
wait_exit "$AGENT_PID"
[ "$EXIT_RC" -eq 1 ] || fail "evicted agent exited with $EXIT_RC"
assert_contains "$(cat "$AGENT_LOG")" "the server refused our node SVID"

step "a fresh data directory without a token: clear error, exit 1"
rc=0
"$AGENT_BIN" run -trustDomain example.org -serverPort "$SERVER_PORT" -dataDir "$T/a2.data" \
  -socketPath "$T/a2/api.sock" -trustBundle "$T/roots.pem" >"$T/a2.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "agent without token exited with $rc"
assert_contains "$(cat "$T/a2.log")" "No node SVID in $T/a2.data"

step "the used token again on a fresh data directory: refused, exit 1"
rc=0
timeout "$(scaled 30)" "$AGENT_BIN" run -trustDomain example.org -serverPort "$SERVER_PORT" \
  -dataDir "$T/a3.data" -socketPath "$T/a3/api.sock" -trustBundle "$T/roots.pem" \
  -joinToken "$TOK" >"$T/a3.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "agent with a used token exited with $rc"
assert_contains "$(cat "$T/a3.log")" "Cannot continue"

step "a token file and x509pop flags are checked"
printf '%s\n' "   " >"$T/empty.tok"
expect_fail "empty token file" "$AGENT_BIN" run -trustDomain example.org -joinTokenFile "$T/empty.tok"
assert_contains "$OUT" "join token"
expect_fail "x509pop cert without key" "$AGENT_BIN" run -trustDomain example.org \
  -x509popCert "$T/roots.pem"
assert_contains "$OUT" "-x509popCert and -x509popKey go together"

step "x509pop attestation with a site CA"
openssl ecparam -name prime256v1 -genkey -noout -out "$T/site-ca.key" 2>/dev/null
openssl req -x509 -new -key "$T/site-ca.key" -subj "/CN=Site CA" -days 2 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
  -out "$T/site-ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/n1.ec" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$T/n1.ec" -out "$T/n1.key"
chmod 600 "$T/n1.key"
openssl req -new -key "$T/n1.key" -subj "/CN=node-1" -out "$T/n1.csr" 2>/dev/null
printf 'keyUsage=critical,digitalSignature\n' >"$T/n1.ext"
openssl x509 -req -in "$T/n1.csr" -CA "$T/site-ca.pem" -CAkey "$T/site-ca.key" \
  -CAcreateserial -days 1 -extfile "$T/n1.ext" -out "$T/n1.pem" 2>/dev/null
FP=$(openssl x509 -in "$T/n1.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g' |
  tr 'A-F' 'a-f')
stop_server
start_server srv -x509popCA "$T/site-ca.pem"
start_agent x1 -x509popCert "$T/n1.pem" -x509popKey "$T/n1.key" -trustBundle "$T/roots.pem"
wait_for grep -q "Node attested as" "$AGENT_LOG" || fail "x509pop agent did not attest"
[ "$(agent_id "$AGENT_LOG")" = "$TDID/warden/agent/x509pop/$FP" ] ||
  fail "x509pop agent ID $(agent_id "$AGENT_LOG"), expected .../x509pop/$FP"
wcli entry create -spiffeID "$TDID/x1" -parentID "$TDID/warden/agent/x509pop/$FP" \
  -selector unix:uid:0 >/dev/null
wait_for acli fetch x509 || fail "x509pop agent: no SVID"
expect_ok "x509pop agent fetch" acli fetch x509
assert_contains "$OUT" "$TDID/x1"

step "evicted x509pop agent: refused, attests again by itself and keeps serving"
expect_ok "evict" wcli agent evict -spiffeID "$TDID/warden/agent/x509pop/$FP"
attested_twice() { [ "$(grep -c "Node attested as" "$AGENT_LOG")" -ge 2 ]; }
wait_for attested_twice ||
  fail "x509pop agent did not attest again: $(tail -n 5 "$AGENT_LOG")"
assert_contains "$(cat "$AGENT_LOG")" "The server refused node SVID"
kill -0 "$AGENT_PID" || fail "x509pop agent exited"
wait_for acli fetch x509 || fail "no SVID after re-attestation"
expect_ok "agent list" wcli agent list
assert_contains "$OUT" "$TDID/warden/agent/x509pop/$FP"
stop_agent
stop_server
pass
