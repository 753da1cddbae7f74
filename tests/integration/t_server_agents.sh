#!/usr/bin/env bash
# warden-server: agents attested with join tokens (by an independent Python grpcio
# client over TLS) as seen by `agent list|show|evict|ban`; admin changes reach open
# Sync streams; tokens and agents survive a restart.
. "$(dirname "$0")/lib.sh"

TD=example.org
NODE="$PY $WARDEN_SOURCE_DIR/tests/integration/server_node_client.py"
json() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
token() { wcli token generate "$@" | sed -n 's/^Token: //p'; }
# attest DIR TOKEN: prints the agent's SPIFFE ID.
attest() {
  mkdir -p "$1"
  $NODE attest "127.0.0.1:$SERVER_PORT" "$T/bundle.pem" "$2" "$1"
}
node_sync() { $NODE sync "127.0.0.1:$SERVER_PORT" "$T/bundle.pem" "$@"; }

start_server srv
wcli bundle show >"$T/bundle.pem"

step "join-token attestation shows up in agent list/show"
T1=$(token -spiffeID spiffe://example.org/node/rack1)
T2=$(token) # used only after the restart
T3=$(token)
A1=$(attest "$T/a1" "$T1")
[ "$A1" = "spiffe://example.org/warden/agent/join_token/$T1" ] || fail "agent ID $A1"
expect_ok "agent list" wcli agent list
assert_contains "$OUT" "Found 1 attested agent"
assert_contains "$OUT" "SPIFFE ID        : $A1"
assert_contains "$OUT" "Attestation type : join_token"
assert_contains "$OUT" "Banned           : false"
SERIAL=$(openssl x509 -in "$T/a1/agent.pem" -noout -serial | cut -d= -f2 | tr A-F a-f | sed 's/^0*//')
OUT=$(wcli agent show -spiffeID "$A1" -output json)
[ "$(json '(d["spiffe_id"], d["attestation_type"], d["serial"], d["banned"])' <<<"$OUT")" = "('$A1', 'join_token', '$SERIAL', False)" ] ||
  fail "agent show json: $OUT"
expect_fail "token reuse" attest "$T/again" "$T1"
assert_contains "$OUT" "PERMISSION_DENIED"
expect_ok "alias entry" wcli entry show -spiffeID spiffe://example.org/node/rack1
assert_contains "$OUT" "Node alias       : true"

step "entry changes reach an open Sync stream"
[ "$(node_sync "$T/a1")" = "snapshot 0" ] || fail "first sync"
node_sync "$T/a1" 20 >"$T/sync1.out" 2>&1 &
SYNC=$!
wait_for grep -q "snapshot 0" "$T/sync1.out" || fail "sync did not start: $(cat "$T/sync1.out")"
wcli entry create -spiffeID spiffe://example.org/w1 -parentID "$A1" -selector unix:uid:1 >/dev/null
wait "$SYNC" || fail "sync: $(cat "$T/sync1.out")"
[ "$(tail -n 1 "$T/sync1.out")" = "snapshot 1" ] || fail "no push after entry create: $(cat "$T/sync1.out")"

step "restart keeps agents and unused tokens"
stop_server
start_server srv
expect_ok "agent list after restart" wcli agent list
assert_contains "$OUT" "SPIFFE ID        : $A1"
A2=$(attest "$T/a2" "$T2") || fail "token made before the restart is not usable: $A2"
[ "$A2" = "spiffe://example.org/warden/agent/join_token/$T2" ] || fail "agent 2 ID $A2"
[ "$(wcli agent list -output json | json 'len(d["agents"])')" = 2 ] || fail "two agents"
[ "$(node_sync "$T/a1")" = "snapshot 1" ] || fail "agent 1 lost its entry across the restart"

step "ban: open streams end, later calls are refused, the agent stays listed as banned"
node_sync "$T/a1" 20 >"$T/sync2.out" 2>&1 &
SYNC=$!
wait_for grep -q "snapshot 1" "$T/sync2.out" || fail "sync did not start: $(cat "$T/sync2.out")"
expect_ok "ban" wcli agent ban -spiffeID "$A1"
assert_contains "$OUT" "Agent $A1 banned"
wait "$SYNC" || true
[ "$(tail -n 1 "$T/sync2.out")" = "status PERMISSION_DENIED" ] || fail "stream of a banned agent: $(cat "$T/sync2.out")"
expect_fail "banned agent syncs" node_sync "$T/a1"
assert_contains "$OUT" "PERMISSION_DENIED"
[ "$(wcli agent show -spiffeID "$A1" -output json | json 'd["banned"]')" = True ] || fail "not banned"

step "evict: the agent is gone and must attest again"
expect_ok "evict" wcli agent evict -spiffeID "$A2"
assert_contains "$OUT" "evicted"
expect_fail "show evicted" wcli agent show -spiffeID "$A2"
assert_contains "$OUT" "Error: no attested agent with SPIFFE ID $A2"
expect_fail "evicted agent syncs" node_sync "$T/a2"
assert_contains "$OUT" "PERMISSION_DENIED"
A3=$(attest "$T/a3" "$T3")
[ "$(wcli agent list -output json | json 'sorted(a["spiffe_id"] for a in d["agents"])')" = "$("$PY" -c 'import sys; print(sorted(sys.argv[1:]))' "$A1" "$A3")" ] ||
  fail "agent list after evict"
stop_server

pass
