#!/bin/bash
# Workload API interop against the Workload API server fed by the test fixture
# (wapi_testserver: real SVIDs from a test CA): the Python grpcio client
# (py/workload_client.py) as root, as uid 65534, as a uid without entry and as a uid
# whose entry has no SVID yet, covering every positive and negative case of the spec;
# then the agent's `api` CLI (fetch x509 -write, fetch jwt, validate, bundles, watch
# seeing an entry appear and disappear within 1 s, healthcheck). The same checks run
# against the real agent in t_agent_workload.sh.
. "$(dirname "$0")/lib.sh"

BIN="$WARDEN_BUILD_DIR/tests/unit/workload_api"
PYC="$WARDEN_SOURCE_DIR/tests/integration/py/workload_client.py"
# The client generates its message classes from proto/ next to it: other uids run the
# copies (as_uid), so the .proto goes along.
uid_copy "$WARDEN_SOURCE_DIR/proto/spiffe/workload/workload.proto" >/dev/null
SOCK="$T/wl/api.sock"
ID=spiffe://example.org/workload

wapi() { "$BIN/wapi_cli" "$@"; }

step "start the test server (SVIDs re-signed every second)"
"$BIN/wapi_testserver" -s "$SOCK" -r 1000 -e "$T/expired.jwt" -f "$T/fed.jwt" \
  >"$T/testserver.log" 2>&1 &
SRV=$!
PIDS+=("$SRV")
wait_socket "$SOCK"
chmod 644 "$T/expired.jwt" "$T/fed.jwt"
[ "$(stat -c %a "$T/wl")" = 755 ] || fail "socket directory mode $(stat -c %a "$T/wl")"
[ "$(stat -c %a "$SOCK")" = 777 ] || fail "socket mode $(stat -c %a "$SOCK")"

step "python as root: identities, bundles, JWT, validation, negative cases, stream update"
expect_ok "python root" "$PY" "$PYC" --socket "$SOCK" full --expect-id "$ID/root" \
  --expect-hint root --expect-federated federated.test --expect-update \
  --foreign-id "$ID/nobody" --expired-token "$T/expired.jwt" --fed-token "$T/fed.jwt" \
  --print-jwt "$T/root.jwt"
echo "$OUT"
chmod 644 "$T/root.jwt"

step "python as uid 65534: its own identity only, no federation"
expect_ok "python nobody" as_uid 65534 "$PY" "$PYC" --socket "$SOCK" full \
  --expect-id "$ID/nobody" --expect-hint "" --foreign-id "$ID/root" \
  --expired-token "$T/expired.jwt" --fed-token "$T/fed.jwt"
echo "$OUT"

step "python as uid 4243 (no entry): PERMISSION_DENIED, validation still works"
expect_ok "python denied" as_uid 4243 "$PY" "$PYC" --socket "$SOCK" denied \
  --valid-token "$T/root.jwt"
echo "$OUT"

step "python as uid 4242 (entry without SVID yet): stream waits, JWT UNAVAILABLE"
expect_ok "python pending" as_uid 4242 "$PY" "$PYC" --socket "$SOCK" pending
echo "$OUT"

step "CLI: fetch x509 -write"
expect_ok "fetch x509" wapi api fetch x509 -socketPath "$SOCK" -write "$T/out"
assert_contains "$OUT" "SPIFFE ID:         $ID/root"
assert_contains "$OUT" "Federated bundle:  spiffe://federated.test (1 CA)"
[ "$(stat -c %a "$T/out/svid.0.key")" = 600 ] || fail "key file mode"
for f in svid.0.pem bundle.0.pem federated_bundle.0.0.pem; do
  [ -s "$T/out/$f" ] || fail "$f missing"
done
openssl verify -CAfile "$T/out/bundle.0.pem" "$T/out/svid.0.pem" >/dev/null ||
  fail "svid.0.pem does not chain to bundle.0.pem"
openssl x509 -in "$T/out/svid.0.pem" -noout -ext subjectAltName | grep -q "URI:$ID/root" ||
  fail "svid.0.pem has the wrong URI SAN"
[ "$(openssl pkey -in "$T/out/svid.0.key" -pubout)" = \
  "$(openssl x509 -in "$T/out/svid.0.pem" -noout -pubkey)" ] || fail "key does not match"

step "CLI: other uids"
expect_ok "fetch as nobody" as_uid 65534 "$BIN/wapi_cli" api fetch x509 -socketPath "$SOCK"
assert_contains "$OUT" "$ID/nobody"
assert_not_contains "$OUT" "$ID/root"
expect_fail "fetch without entry" as_uid 4243 "$BIN/wapi_cli" api fetch x509 -socketPath "$SOCK"
assert_contains "$OUT" "Error: FetchX509SVID: PERMISSION_DENIED: no identity issued"
[ "$(echo "$OUT" | wc -l)" = 1 ] || fail "error is not one line: $OUT"

step "CLI: JWT round trip and refusals"
expect_ok "fetch jwt" wapi api fetch jwt -socketPath "$SOCK" -audience a1 -output json
TOKEN=$(echo "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["svids"][0]["svid"])')
expect_ok "validate" wapi api validate jwt -socketPath "$SOCK" -audience a1 -svid "$TOKEN"
assert_contains "$OUT" "SVID is valid."
assert_contains "$OUT" "SPIFFE ID : $ID/root"
expect_ok "validate from stdin" sh -c "echo '$TOKEN' | '$BIN/wapi_cli' api validate jwt \
  -socketPath '$SOCK' -audience a1 -svid -"
expect_fail "wrong audience" wapi api validate jwt -socketPath "$SOCK" -audience a2 -svid "$TOKEN"
assert_contains "$OUT" "INVALID_ARGUMENT: unable to validate JWT-SVID"
expect_fail "expired" wapi api validate jwt -socketPath "$SOCK" -audience interop \
  -svid "$(cat "$T/expired.jwt")"
expect_fail "no audience" wapi api fetch jwt -socketPath "$SOCK"
expect_fail "foreign id" wapi api fetch jwt -socketPath "$SOCK" -audience a1 -spiffeID "$ID/nobody"
assert_contains "$OUT" "PERMISSION_DENIED"
expect_ok "jwt bundles" wapi api fetch jwt bundles -socketPath "$SOCK"
assert_contains "$OUT" "bundle(spiffe://example.org):"
expect_ok "x509 bundles" env SPIFFE_ENDPOINT_SOCKET="unix://$SOCK" "$BIN/wapi_cli" api fetch bundles
assert_contains "$OUT" "bundle(spiffe://federated.test):"
expect_ok "healthcheck" wapi healthcheck -socketPath "$SOCK"

step "CLI: watch sees a new entry and its deletion within 1 s"
"$BIN/wapi_cli" api watch -socketPath "$SOCK" -output json >"$T/watch.out" 2>"$T/watch.err" &
WATCH=$!
PIDS+=("$WATCH")
wait_for grep -q "$ID/root" "$T/watch.out" || fail "watch printed nothing"
# last_has PATTERN: the newest update line mentions PATTERN.
last_has() { tail -n 1 "$T/watch.out" | grep -q "$1"; }
last_lacks() { ! tail -n 1 "$T/watch.out" | grep -q "$1"; }
# within_1s CMD...: CMD succeeds within 1 s (scaled for slow builds).
within_1s() { wait_for -t 1 "$@"; }
kill -USR2 "$SRV"
within_1s last_has "$ID/extra" || fail "new entry not seen within 1 s"
kill -USR2 "$SRV"
within_1s last_lacks "$ID/extra" || fail "deleted entry still shown after 1 s"
kill -TERM "$WATCH"
wait "$WATCH" || fail "watch did not exit cleanly on SIGTERM"

step "stop the server (exit 0, leak-free under ASan)"
kill -TERM "$SRV"
wait "$SRV" || fail "test server exited with $?"
pass
