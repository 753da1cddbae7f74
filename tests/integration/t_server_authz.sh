#!/usr/bin/env bash
# warden-server admin socket: only uid 0, the server's own uid and -adminUIDs are served.
. "$(dirname "$0")/lib.sh"

NOBODY=65534
count() { wcli entry count -output json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }

start_server srv
wcli entry create -spiffeID spiffe://example.org/a -parentID spiffe://example.org/p \
  -selector unix:uid:1 >/dev/null

step "the socket is 0770: another uid cannot even connect"
[ "$(stat -c '%a %u' "$SERVER_SOCK")" = "770 0" ] || fail "socket mode/owner"
expect_fail "nobody, 0770 socket" as_uid $NOBODY "$SERVER_BIN" entry count -socketPath "$SERVER_SOCK"
assert_contains "$OUT" "Error: cannot connect to the server at $SERVER_SOCK: Permission denied"

step "a reachable socket still refuses non-admins with PERMISSION_DENIED"
chmod 0777 "$SERVER_SOCK"
for cmd in "entry count" "entry show" "healthcheck" "token generate" "agent list" "bundle show"; do
  # shellcheck disable=SC2086
  expect_fail "nobody: $cmd" as_uid $NOBODY "$SERVER_BIN" $cmd -socketPath "$SERVER_SOCK"
  assert_contains "$OUT" "Error: permission denied: uid $NOBODY is not an admin"
done
expect_fail "nobody creates" as_uid $NOBODY "$SERVER_BIN" entry create -socketPath "$SERVER_SOCK" \
  -spiffeID spiffe://example.org/evil -parentID spiffe://example.org/p -selector unix:uid:0
assert_contains "$OUT" "permission denied"
[ "$(count)" = 1 ] || fail "a refused call changed the datastore"
grep -q "admin: refused CreateJoinToken: not an admin uid=$NOBODY pid=[0-9]* status=PERMISSION_DENIED" "$SERVER_LOG" ||
  fail "refusal not logged"
expect_ok "root still works" wcli entry count
stop_server

step "-adminUIDs lets that uid in"
start_server srv -adminUIDs "1234,$NOBODY"
chmod 0777 "$SERVER_SOCK"
expect_ok "nobody as admin" as_uid $NOBODY "$SERVER_BIN" entry count -socketPath "$SERVER_SOCK"
assert_contains "$OUT" "1 registration entry"
expect_ok "nobody creates" as_uid $NOBODY "$SERVER_BIN" entry create -socketPath "$SERVER_SOCK" \
  -spiffeID spiffe://example.org/b -parentID spiffe://example.org/p -selector unix:uid:2
assert_contains "$OUT" "Created by       : uid:$NOBODY"
expect_fail "uid 1000 is not listed" as_uid 1000 "$SERVER_BIN" healthcheck -socketPath "$SERVER_SOCK"
assert_contains "$OUT" "Error: permission denied: uid 1000 is not an admin"
stop_server

pass
