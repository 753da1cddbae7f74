#!/usr/bin/env bash
# warden-server audit show|verify: admin changes (entry create/update/delete, token
# generate, agent ban) and a node alias created at attestation are recorded with their
# actor; the hash chain verifies; a row edited in the database file while the server is
# down is named by `audit verify`, which then exits non-zero; non-admins are refused.
. "$(dirname "$0")/lib.sh"

TD=example.org
NOBODY=65534
DB="$T/srv.data/datastore.sqlite3"
NODE="$PY $WARDEN_SOURCE_DIR/tests/integration/server_node_client.py"
json() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
token() { wcli token generate "$@" | sed -n 's/^Token: //p'; }

start_server srv
wcli bundle show >"$T/bundle.pem"

step "an empty log is intact"
expect_ok "verify empty" wcli audit verify
assert_contains "$OUT" "audit log intact: 0 records"
expect_ok "show empty" wcli audit show
assert_contains "$OUT" "No audit records"

step "admin changes are recorded with actor uid:0"
WEB=$(new_entry spiffe://example.org/web spiffe://example.org/p unix:uid:1000)
[ -n "$WEB" ] || fail "entry create"
expect_ok "update" wcli entry update -entryID "$WEB" -selector unix:uid:1001
expect_ok "delete" wcli entry delete -entryID "$WEB"
TOK=$(token -spiffeID spiffe://example.org/node/rack1)
[ -n "$TOK" ] || fail "token generate"
A1=$(mkdir -p "$T/a1" && $NODE attest "127.0.0.1:$SERVER_PORT" "$T/bundle.pem" "$TOK" "$T/a1")
[ "$A1" = "spiffe://example.org/warden/agent/join_token/$TOK" ] || fail "attest: $A1"
expect_ok "ban" wcli agent ban -spiffeID "$A1"

OUT=$(wcli audit show -output json)
[ "$(json '[(r["seq"], r["kind"], r["actor"], r["subject"]) for r in d["records"]]' <<<"$OUT")" = \
  "[(1, 'entry.create', 'uid:0', 'spiffe://example.org/web'), (2, 'entry.update', 'uid:0', 'spiffe://example.org/web'), (3, 'entry.delete', 'uid:0', 'spiffe://example.org/web'), (4, 'token.create', 'uid:0', 'spiffe://example.org/node/rack1'), (5, 'entry.create', '$A1', 'spiffe://example.org/node/rack1'), (6, 'agent.ban', 'uid:0', '$A1')]" ] ||
  fail "audit show json: $OUT"
[ "$(json 'd["records"][0]["data"]["id"]' <<<"$OUT")" = "$WEB" ] || fail "entry id in data: $OUT"
HASH=$(printf %s "$TOK" | sha256sum | cut -d' ' -f1)
[ "$(json 'd["records"][3]["data"]["token_sha256"]' <<<"$OUT")" = "$HASH" ] || fail "token hash: $OUT"
assert_not_contains "$OUT" "\"$TOK\"" "the token itself"
assert_not_contains "$(sqlite3 "$DB" "SELECT data FROM audit")" "$TOK" "stored token"

step "filters"
expect_ok "show text" wcli audit show -kind agent.ban
assert_contains "$OUT" "agent.ban actor=uid:0 subject=$A1"
assert_not_contains "$OUT" "entry.create"
[ "$(wcli audit show -spiffeID spiffe://example.org/web -output json | json 'len(d["records"])')" = 3 ] ||
  fail "-spiffeID filter"
[ "$(wcli audit show -limit 2 -output json | json '[r["seq"] for r in d["records"]]')" = "[1, 2]" ] ||
  fail "-limit"
[ "$(wcli audit show -since 4102444800 -output json | json 'len(d["records"])')" = 0 ] ||
  fail "-since in the future"
[ "$(wcli audit show -until 1 -output json | json 'len(d["records"])')" = 0 ] || fail "-until"

step "the chain verifies"
expect_ok "verify" wcli audit verify
assert_contains "$OUT" "audit log intact: 6 records"
[ "$(wcli audit verify -output json | json 'd["intact"], d["count"]')" = "(True, 6)" ] ||
  fail "verify json"

step "non-admins are refused"
chmod 0777 "$SERVER_SOCK"
for cmd in "audit show" "audit verify"; do
  # shellcheck disable=SC2086
  expect_fail "nobody: $cmd" as_uid $NOBODY "$SERVER_BIN" $cmd -socketPath "$SERVER_SOCK"
  assert_contains "$OUT" "Error: permission denied: uid $NOBODY is not an admin"
done
stop_server

step "a row changed in the file while the server is down is named"
"$PY" - "$DB" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE audit SET actor = 'uid:1000' WHERE seq = 2")
db.commit()
db.close()
PYEOF
start_server srv
expect_fail "verify tampered" wcli audit verify
assert_contains "$OUT" "audit log broken at record 2: was changed"
[ "$(wcli audit verify -output json | json 'd["intact"], d["broken_seq"], d["reason"]')" = \
  "(False, 2, 'was changed')" ] || fail "verify json when broken"
stop_server

step "a deleted middle row is a gap"
"$PY" - "$DB" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE audit SET actor = 'uid:0' WHERE seq = 2")
db.execute("DELETE FROM audit WHERE seq = 4")
db.commit()
db.close()
PYEOF
start_server srv
expect_fail "verify gap" wcli audit verify
assert_contains "$OUT" "audit log broken at record 4: is missing"
stop_server

pass
