#!/bin/bash
# Rotation with short TTLs: the server's default X509-SVID TTL is 20 s (so the node
# SVID lives 20 s too), an open `api watch` stream sees a new serial within ~15 s and
# then keeps seeing new ones; the node SVID is renewed at half-life and persisted.
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org

step "server with 20 s SVIDs, agent, one entry"
start_server srv -defaultX509SVIDTTL 20s -minX509SVIDTTL 20s
wcli bundle show >"$T/roots.pem"
TOK=$(wcli token generate | sed -n 's/^Token: //p')
start_agent a1 -joinToken "$TOK" -trustBundle "$T/roots.pem"
agent_attested
AID=$(agent_id "$AGENT_LOG")
NODE_SERIAL=$(openssl x509 -in "$AGENT_DATA/agent_svid.pem" -noout -serial)
wcli entry create -spiffeID "$TDID/w1" -parentID "$AID" -selector unix:uid:0 >/dev/null
wait_for acli fetch x509 || fail "no SVID: $(acli fetch x509 2>&1)"

step "api watch sees the SVID rotate"
"$AGENT_BIN" api watch -socketPath "$AGENT_SOCK" >"$T/watch.out" 2>&1 &
WATCH=$!
PIDS+=("$WATCH")
serials() { sed -n 's/^Serial: *//p' "$T/watch.out" | sort -u | wc -l; }
serials_ge() { [ "$(serials)" -ge "$1" ]; }
T0=$(date +%s)
wait_for -t 25 serials_ge 2 || fail "no new serial within $(scaled 25) s: $(cat "$T/watch.out")"
echo "first rotation seen after $(($(date +%s) - T0)) s"
# The rotation is due by the clock (half-life); a slow build only adds its latency.
[ $(($(date +%s) - T0)) -le $((15 + $(scaled 1))) ] || fail "rotation later than ~15 s"
wait_for -t 20 serials_ge 3 || fail "rotation did not continue: $(cat "$T/watch.out")"
kill "$WATCH" 2>/dev/null || true

step "every served SVID chains to the bundle and lives ~30 s (20 s + 10 s backdating)"
expect_ok "fetch" acli fetch x509 -write "$T/out"
expect_ok "verify" openssl verify -CAfile "$T/roots.pem" "$T/out/svid.0.pem"
NB=$(date -d "$(openssl x509 -in "$T/out/svid.0.pem" -noout -startdate | cut -d= -f2)" +%s)
NA=$(date -d "$(openssl x509 -in "$T/out/svid.0.pem" -noout -enddate | cut -d= -f2)" +%s)
[ $((NA - NB)) -le 31 ] || fail "SVID lifetime $((NA - NB)) s"

step "the node SVID was renewed at half-life and persisted"
wait_for grep -q "Node SVID renewed" "$AGENT_LOG" || fail "node SVID not renewed"
[ "$(openssl x509 -in "$AGENT_DATA/agent_svid.pem" -noout -serial)" != "$NODE_SERIAL" ] ||
  fail "renewed node SVID not persisted"
[ "$(agent_id "$AGENT_LOG")" = "$AID" ] || fail "agent ID changed"
assert_not_contains "$(cat "$AGENT_LOG")" "Sync stream" "agent log (renewal must not break the stream)"
expect_ok "agent list" wcli agent list
assert_contains "$OUT" "Found 1 attested agent"
stop_agent
stop_server
pass
