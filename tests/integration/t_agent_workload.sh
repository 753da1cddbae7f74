#!/bin/bash
# The Workload API of the real agent, end to end with the real server: entries for
# uid 0 and uid 65534 each get exactly their own SVID, a uid without entry is denied;
# an open `api watch` sees a new entry appear and a deleted one disappear within 1 s;
# JWT-SVID fetch + validate round trip; tampered, expired and wrong-audience tokens
# refused with one generic message; and the Python grpcio client
# (py/workload_client.py) runs its interop checks against the agent as root, as
# uid 65534 and as a uid without entry.
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org
PYC="$WARDEN_SOURCE_DIR/tests/integration/py/workload_client.py"
# The client generates its message classes from proto/ next to it: other uids run the
# copies (as_uid), so the .proto goes along.
uid_copy "$WARDEN_SOURCE_DIR/proto/spiffe/workload/workload.proto" >/dev/null

# as_agent_cli UID ARGS...: the agent's `api` CLI as another uid.
as_agent_cli() {
  local uid=$1
  shift
  as_uid "$uid" "$AGENT_BIN" api "$@" -socketPath "$AGENT_SOCK"
}

step "server, agent, entries for uid 0 and uid 65534"
start_server srv
wcli bundle show >"$T/roots.pem"
TOK=$(wcli token generate | sed -n 's/^Token: //p')
[ -n "$TOK" ] || fail "no token"
start_agent a1 -joinToken "$TOK" -trustBundle "$T/roots.pem"
wait_for grep -q "Node attested as" "$AGENT_LOG" || fail "agent did not attest"
AID=$(agent_id "$AGENT_LOG")
wcli entry create -spiffeID "$TDID/w/root" -parentID "$AID" -selector unix:uid:0 \
  -hint root >/dev/null
wcli entry create -spiffeID "$TDID/w/nobody" -parentID "$AID" -selector unix:uid:65534 >/dev/null
[ "$(stat -c %a "$AGENT_SOCK")" = 777 ] || fail "socket mode $(stat -c %a "$AGENT_SOCK")"
[ "$(stat -c %a "$(dirname "$AGENT_SOCK")")" = 755 ] || fail "socket directory mode"

step "each uid gets exactly its own SVID"
wait_for acli fetch x509 || fail "root got no SVID: $(acli fetch x509 2>&1)"
expect_ok "root fetch" acli fetch x509 -write "$T/root"
assert_contains "$OUT" "SPIFFE ID:         $TDID/w/root"
assert_contains "$OUT" "Hint:              root"
assert_contains "$OUT" "Received 1 svid after"
assert_not_contains "$OUT" "$TDID/w/nobody"
expect_ok "svid verifies" openssl verify -CAfile "$T/roots.pem" "$T/root/svid.0.pem"
[ "$(stat -c %a "$T/root/svid.0.key")" = 600 ] || fail "key file mode"
expect_ok "silent fetch" acli fetch x509 -write "$T/quiet" -silent
[ -z "$OUT" ] || fail "fetch x509 -silent printed: $OUT"
[ -s "$T/quiet/svid.0.pem" ] && [ -s "$T/quiet/svid.0.key" ] || fail "-silent wrote no files"
wait_for as_agent_cli 65534 fetch x509 || fail "uid 65534 got no SVID"
expect_ok "nobody fetch" as_agent_cli 65534 fetch x509
assert_contains "$OUT" "SPIFFE ID:         $TDID/w/nobody"
assert_contains "$OUT" "Received 1 svid after"
assert_not_contains "$OUT" "$TDID/w/root"
expect_fail "uid without entry" as_agent_cli 4243 fetch x509
assert_contains "$OUT" "Error: FetchX509SVID: PERMISSION_DENIED: no identity issued"
expect_fail "jwt without entry" as_agent_cli 4243 fetch jwt -audience a
assert_contains "$OUT" "PERMISSION_DENIED"
expect_ok "healthcheck" "$AGENT_BIN" healthcheck -socketPath "$AGENT_SOCK"

step "api watch: a new entry appears and a deleted one disappears within 1 s"
"$AGENT_BIN" api watch -socketPath "$AGENT_SOCK" -output json >"$T/watch.out" 2>"$T/watch.err" &
WATCH=$!
PIDS+=("$WATCH")
wait_for grep -q "$TDID/w/root" "$T/watch.out" || fail "watch printed nothing"
last_has() { tail -n 1 "$T/watch.out" | grep -q "$1"; }
last_lacks() { ! tail -n 1 "$T/watch.out" | grep -q "$1"; }
# within_1s CMD...: CMD succeeds within 1 s (scaled for slow builds).
within_1s() { wait_for -t 1 "$@"; }
EXTRA=$(wcli entry create -spiffeID "$TDID/w/extra" -parentID "$AID" -selector unix:uid:0 |
  sed -n 's/^Entry ID *: *//p')
[ -n "$EXTRA" ] || fail "entry create printed no ID"
within_1s last_has "$TDID/w/extra" || fail "new entry not on the watch within 1 s: $(tail -n 2 "$T/watch.out")"
wcli entry delete -entryID "$EXTRA" >/dev/null
within_1s last_lacks "$TDID/w/extra" || fail "deleted entry still on the watch after 1 s"
last_has "$TDID/w/root" || fail "the remaining identity vanished from the watch"
kill -TERM "$WATCH"
wait "$WATCH" || fail "watch did not exit cleanly"

step "JWT-SVID round trip and refusals"
expect_ok "fetch jwt" acli fetch jwt -audience interop -output json
TOKEN=$(echo "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["svids"][0]["svid"])')
expect_ok "validate" acli validate jwt -audience interop -svid "$TOKEN"
assert_contains "$OUT" "SPIFFE ID : $TDID/w/root"
expect_fail "wrong audience" acli validate jwt -audience other -svid "$TOKEN"
assert_contains "$OUT" "INVALID_ARGUMENT: unable to validate JWT-SVID"
BAD="${TOKEN%?????}AAAAA"
expect_fail "tampered" acli validate jwt -audience interop -svid "$BAD"
assert_contains "$OUT" "INVALID_ARGUMENT: unable to validate JWT-SVID"
# An expired token signed with the server's current JWT key (read from its data dir).
STATE="$T/srv.data/ca/state.json"
KID=$("$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print([j for j in s["jwt"] if j["role"]=="current"][0]["kid"])' "$STATE")
KEYF="$T/srv.data/ca/$("$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print([j for j in s["jwt"] if j["role"]=="current"][0]["key"])' "$STATE")"
"$PY" "$PYC" mint --key "$KEYF" --kid="$KID" --sub "$TDID/w/root" --exp-offset=300 \
  >"$T/fresh.jwt"
expect_ok "own mint validates" acli validate jwt -audience interop -svid "$(cat "$T/fresh.jwt")"
"$PY" "$PYC" mint --key "$KEYF" --kid="$KID" --sub "$TDID/w/root" --exp-offset=-3600 \
  >"$T/expired.jwt"
chmod 644 "$T/expired.jwt"
expect_fail "expired" acli validate jwt -audience interop -svid "$(cat "$T/expired.jwt")"
assert_contains "$OUT" "INVALID_ARGUMENT: unable to validate JWT-SVID"
echo "$TOKEN" >"$T/root.jwt"
chmod 644 "$T/root.jwt"

step "python interop against the agent: root, uid 65534, uid without entry"
expect_ok "python root" "$PY" "$PYC" --socket "$AGENT_SOCK" full --expect-id "$TDID/w/root" \
  --expect-hint root --foreign-id "$TDID/w/nobody" --expired-token "$T/expired.jwt"
echo "$OUT"
expect_ok "python nobody" as_uid 65534 "$PY" "$PYC" --socket "$AGENT_SOCK" full \
  --expect-id "$TDID/w/nobody" --expect-hint "" --foreign-id "$TDID/w/root" \
  --expired-token "$T/expired.jwt"
echo "$OUT"
expect_ok "python denied" as_uid 4243 "$PY" "$PYC" --socket "$AGENT_SOCK" denied \
  --valid-token "$T/root.jwt"
echo "$OUT"

step "stop (exit 0, leak-free under ASan)"
stop_agent
stop_server
pass
