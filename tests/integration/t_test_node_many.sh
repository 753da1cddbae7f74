#!/bin/bash
# Smoke test of the scale-benchmark commands of warden-test-node (scripts/bench-scale.sh):
# admin-tokens makes join tokens with a node alias, sync-many attests 3 simulated agents
# and keeps one Sync stream each, admin-create-loop creates entries under the alias and
# every agent's stream reports each change.
. "$(dirname "$0")/lib.sh"

ALIAS=spiffe://example.org/smoke/fleet

start_server srv -attestRatePerSource 0
wcli bundle show >"$T/roots.pem"

step "admin-tokens: 3 join tokens with a node alias"
"$NODE_BIN" admin-tokens -socketPath "$SERVER_SOCK" -count 3 -alias "$ALIAS" >"$T/tokens" ||
  fail "admin-tokens"
[ "$(sort -u "$T/tokens" | wc -l)" = 3 ] || fail "expected 3 distinct tokens: $(cat "$T/tokens")"

step "sync-many: 3 agents attest and sync"
"$NODE_BIN" sync-many -server "127.0.0.1:$SERVER_PORT" -trustBundle "$T/roots.pem" \
  -tokens "$T/tokens" -dir "$T/fleet" -count 3 >"$T/sync.out" 2>"$T/sync-many.log" &
FLEET_PID=$!
PIDS+=("$FLEET_PID")
wait_for -t 20 test -f "$T/fleet/ready" || fail "sync-many did not get ready"
[ "$(wc -l <"$T/fleet/ids")" = 3 ] || fail "ids: $(cat "$T/fleet/ids")"
grep -q "/warden/agent/join_token/" "$T/fleet/ids" || fail "ids: $(cat "$T/fleet/ids")"
[ "$(wc -l <"$T/sync.out")" -ge 3 ] || fail "no first messages: $(cat "$T/sync.out")"
[ "$(wcli agent count | grep -o '[0-9]*' | head -n 1)" = 3 ] || fail "agent count: $(wcli agent count)"

step "admin-create-loop: 2 entries under the alias reach all 3 agents"
"$NODE_BIN" admin-create-loop -socketPath "$SERVER_SOCK" -parentID "$ALIAS" \
  -spiffeIDPrefix spiffe://example.org/smoke/w -count 2 >"$T/creates" || fail "admin-create-loop"
[ "$(awk '$3 == 0 && $2 >= $1' "$T/creates" | wc -l)" = 2 ] || fail "creates: $(cat "$T/creates")"
# Every agent's messages after its first carry both entries, whether the server sends
# snapshots (the last one holds both) or deltas (one entry each).
got_both() {
  awk '{ if (seen[$2]++) n[$2] += $5 } END { for (a in n) if (n[a] >= 2) c++; exit !(c == 3) }' \
    "$T/sync.out"
}
wait_for got_both || fail "not every agent got the entries: $(cat "$T/sync.out")"

step "SIGTERM: sync-many exits 0"
kill -TERM "$FLEET_PID"
wait_exit "$FLEET_PID" 10
[ "$EXIT_RC" = 0 ] || fail "sync-many exited $EXIT_RC: $(cat "$T/sync-many.log")"
pass
