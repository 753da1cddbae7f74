#!/usr/bin/env bash
# warden-server: every admin CLI verb against a real server on a temp dataDir and a free
# port, then a restart that must keep the CA keys, entries and join tokens.
. "$(dirname "$0")/lib.sh"

TD=example.org
AGENT=spiffe://example.org/warden/agent/join_token/n1

# json EXPR: evaluates a Python expression over the JSON document on stdin (as d).
json() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
count() { wcli entry count -output json | json 'd["count"]'; }
entry_id() { sed -n 's/^Entry ID *: //p' <<<"$1"; }

PORT=$(free_port)
start_server srv -serverPort "$PORT"
[ "$SERVER_PORT" = "$PORT" ] || fail "server listens on $SERVER_PORT, not on -serverPort $PORT"
[ "$(stat -c %a "$T/srv.data")" = 700 ] || fail "dataDir is not 0700"
[ "$(stat -c %a "$SERVER_SOCK")" = 770 ] || fail "admin socket is not 0770"

step "healthcheck"
expect_ok "healthcheck" wcli healthcheck
assert_contains "$OUT" "trust domain example.org"
[ "$(wcli healthcheck -output json | json 'd["healthy"]')" = True ] || fail "healthcheck json"

step "entry create"
store_bundle "$T/srv.data" other.org
expect_ok "create web" wcli entry create -spiffeID spiffe://example.org/web -parentID "$AGENT" \
  -selector unix:uid:1000 -selector unix:gid:1000 -dns web.local -dns www.web.local \
  -hint web -x509SVIDTTL 30m -jwtSVIDTTL 90 -federatesWith other.org -admin \
  -entryExpiry 4102444800
WEB=$(entry_id "$OUT")
[ -n "$WEB" ] || fail "no entry ID printed: $OUT"
for want in "SPIFFE ID        : spiffe://example.org/web" "Selector         : unix:gid:1000" \
  "Selector         : unix:uid:1000" "DNS name         : www.web.local" "X509-SVID TTL    : 30m" \
  "JWT-SVID TTL     : 1m30s" "FederatesWith    : other.org" "Admin            : true" \
  "Hint             : web" "Revision         : 1" "Created by       : uid:0" \
  "Expires at       : 2100-01-01T00:00:00Z"; do
  assert_contains "$OUT" "$want" "entry create output"
done
assert_contains "$OUT" "State            : active" "a new entry is active"
OUT=$(wcli entry create -spiffeID spiffe://example.org/db -parentID "$AGENT" \
  -selector unix:user:postgres -output json)
DB=$(json 'd["entries"][0]["id"]' <<<"$OUT")
[ "$(json 'd["entries"][0]["selectors"]' <<<"$OUT")" = "[{'type': 'unix', 'value': 'user:postgres'}]" ] ||
  fail "selectors in json: $OUT"
expect_ok "node alias" wcli entry create -spiffeID spiffe://example.org/node/rack1 -node \
  -selector warden:rack:1 -allowUnknownSelectorType
assert_contains "$OUT" "Parent ID        : spiffe://example.org/warden/server"
assert_contains "$OUT" "Node alias       : true"
[ "$(count)" = 3 ] || fail "count after create: $(count)"

step "unix:path without a uid or user: created, with a warning"
OUT=$(wcli entry create -spiffeID spiffe://example.org/tool -parentID "$AGENT" \
  -selector unix:path:/usr/bin/tool 2>&1 >/dev/null)
assert_contains "$OUT" "Warning: spiffe://example.org/tool selects by unix:path or unix:sha256 without unix:uid or unix:user"
TOOL=$(wcli entry show -spiffeID spiffe://example.org/tool -output json | json 'd["entries"][0]["id"]')
OUT=$(wcli entry create -spiffeID spiffe://example.org/tool2 -parentID "$AGENT" \
  -selector unix:path:/usr/bin/tool -selector unix:uid:1000 2>&1 >/dev/null)
[ -z "$OUT" ] || fail "warning for a paired selector: $OUT"
TOOL2=$(wcli entry show -spiffeID spiffe://example.org/tool2 -output json | json 'd["entries"][0]["id"]')
wcli entry delete -entryID "$TOOL" >/dev/null
wcli entry delete -entryID "$TOOL2" >/dev/null
[ "$(count)" = 3 ] || fail "count after the path entries: $(count)"
expect_ok "count text" wcli entry count
assert_contains "$OUT" "3 registration entries"

step "entry show with each filter"
expect_ok "show all" wcli entry show
assert_contains "$OUT" "Found 3 entries"
expect_ok "show -entryID" wcli entry show -entryID "$WEB"
assert_contains "$OUT" "Found 1 entry"
assert_contains "$OUT" "Entry ID         : $WEB"
[ "$(wcli entry show -spiffeID spiffe://example.org/db -output json | json 'd["entries"][0]["id"]')" = "$DB" ] ||
  fail "show -spiffeID"
[ "$(wcli entry show -parentID "$AGENT" -output json | json 'len(d["entries"])')" = 2 ] ||
  fail "show -parentID"
[ "$(wcli entry show -selector unix:uid:1000 -output json | json '[e["id"] for e in d["entries"]]')" = "['$WEB']" ] ||
  fail "show -selector"
[ "$(wcli entry show -selector unix:uid:1000 -selector unix:gid:1000 -output json | json 'len(d["entries"])')" = 1 ] ||
  fail "show with two selectors"
expect_ok "show nothing" wcli entry show -selector unix:uid:4242
assert_contains "$OUT" "Found 0 entries"
expect_ok "show combined" wcli entry show -parentID "$AGENT" -spiffeID spiffe://example.org/web
assert_contains "$OUT" "Found 1 entry"

step "entry update"
expect_ok "update" wcli entry update -entryID "$WEB" -hint changed -selector unix:uid:1001
assert_contains "$OUT" "Revision         : 2"
assert_contains "$OUT" "Hint             : changed"
assert_contains "$OUT" "Selector         : unix:uid:1001"
assert_not_contains "$OUT" "unix:gid:1000"
assert_contains "$OUT" "DNS name         : web.local" "fields not given stay"
OUT=$(wcli entry update -entryID "$WEB" -admin=false -x509SVIDTTL 0 -output json)
[ "$(json '(d["revision"], d["admin"], d["x509_svid_ttl"], d["created_by"], d["state"], d["approved_by"])' <<<"$OUT")" = "(3, False, 0, 'uid:0', 'active', '')" ] ||
  fail "update json: $OUT"

step "entry delete"
expect_ok "tmp entry" wcli entry create -spiffeID spiffe://example.org/tmp -parentID "$AGENT" \
  -selector unix:uid:7
TMP=$(entry_id "$OUT")
[ "$(count)" = 4 ] || fail "count with tmp"
expect_ok "delete" wcli entry delete -entryID "$TMP"
assert_contains "$OUT" "Deleted entry $TMP"
expect_fail "show deleted" wcli entry show -entryID "$TMP"
assert_contains "$OUT" "Error: no entry with ID $TMP"
[ "$(count)" = 3 ] || fail "count after delete"

step "entry create -data (batch, all or nothing)"
cat >"$T/batch.json" <<EOF
{"entries": [
  {"spiffe_id": "spiffe://example.org/b1", "parent_id": "$AGENT",
   "selectors": [{"type": "unix", "value": "uid:2001"}], "x509_svid_ttl": "10m"},
  {"spiffe_id": "spiffe://example.org/b2", "parent_id": "$AGENT",
   "selectors": ["unix:uid:2002", "unix:gid:2002"], "dns_names": ["b2.local"], "admin": true},
  {"spiffe_id": "spiffe://example.org/b3", "parent_id": "$AGENT",
   "selectors": ["unix:uid:2003"], "hint": "three", "jwt_svid_ttl": 60}
]}
EOF
OUT=$(wcli entry create -data "$T/batch.json" -output json)
[ "$(json '[e["spiffe_id"][-2:] for e in d["entries"]]' <<<"$OUT")" = "['b1', 'b2', 'b3']" ] ||
  fail "batch result: $OUT"
[ "$(json 'd["entries"][0]["x509_svid_ttl"]' <<<"$OUT")" = 600 ] || fail "batch ttl"
[ "$(count)" = 6 ] || fail "count after batch"
# Entries shown as JSON can be fed back (ids dropped so that only the duplicate check bites).
cat >"$T/dup.json" <<EOF
[{"spiffe_id": "spiffe://example.org/b4", "parent_id": "$AGENT", "selectors": ["unix:uid:2004"]},
 {"spiffe_id": "spiffe://example.org/b5", "parent_id": "$AGENT", "selectors": ["unix:uid:2005"]},
 {"spiffe_id": "spiffe://example.org/b2", "parent_id": "$AGENT",
  "selectors": ["unix:gid:2002", "unix:uid:2002"]}]
EOF
expect_fail "batch with a duplicate" wcli entry create -data "$T/dup.json"
assert_contains "$OUT" "Error: entry 3 of 3 (spiffe://example.org/b2): an entry with the same SPIFFE ID, parent ID and selectors already exists; no entries were created"
cat >"$T/foreign.json" <<EOF
{"entries": [
  {"spiffe_id": "spiffe://example.org/b6", "parent_id": "$AGENT", "selectors": ["unix:uid:2006"]},
  {"spiffe_id": "spiffe://other.org/b7", "parent_id": "$AGENT", "selectors": ["unix:uid:2007"]}]}
EOF
expect_fail "batch with a foreign ID" wcli entry create -data "$T/foreign.json"
assert_contains "$OUT" "Error: entry 2 of 2 (spiffe://other.org/b7): invalid entry: spiffe_id is not in the server's trust domain (example.org)"
cat >"$T/twice.json" <<EOF
[{"spiffe_id": "spiffe://example.org/b8", "parent_id": "$AGENT", "selectors": ["unix:uid:8"]},
 {"spiffe_id": "spiffe://example.org/b8", "parent_id": "$AGENT", "selectors": ["unix:uid:8"]}]
EOF
expect_fail "batch with itself twice" wcli entry create -data "$T/twice.json"
assert_contains "$OUT" "entry 2 of 2"
echo "[{\"id\": \"$WEB\", \"spiffe_id\": \"spiffe://example.org/b9\", \"parent_id\": \"$AGENT\", \"selectors\": [\"unix:uid:9\"]}]" >"$T/taken.json"
expect_fail "batch with a taken ID" wcli entry create -data "$T/taken.json"
assert_contains "$OUT" "Error: an entry with ID $WEB already exists"
printf '{"entries": [{"spiffe_id": "spiffe://example.org/x",' >"$T/broken.json"
expect_fail "broken JSON" wcli entry create -data "$T/broken.json"
assert_contains "$OUT" "invalid JSON"
echo '[{"spiffe_id": "spiffe://example.org/x", "colour": "red"}]' >"$T/unknown.json"
expect_fail "unknown key" wcli entry create -data "$T/unknown.json"
assert_contains "$OUT" "entry 1: \"colour\": unknown key"
echo '[{"spiffe_id": "spiffe://example.org/x", "selectors": ["unix:uid:x"]}]' >"$T/badsel.json"
expect_fail "bad selector in file" wcli entry create -data "$T/badsel.json"
assert_contains "$OUT" "\"selectors\": invalid selector"
# state, created_by and approved_by are the server's record: a file that sets one (as
# `entry show -output json` does) is read, and the server's own values are stored.
cat >"$T/gov.json" <<EOF
[{"spiffe_id": "spiffe://example.org/g1", "parent_id": "$AGENT", "selectors": ["unix:uid:31"],
  "state": "pending_approval", "approved_by": "uid:0", "created_by": "uid:1000",
  "revision": 9, "created_at": "2020-01-01T00:00:00Z"}]
EOF
OUT=$(wcli entry create -data "$T/gov.json" -output json) || fail "governance fields: $OUT"
[ "$(json '(d["entries"][0]["state"], d["entries"][0]["created_by"], d["entries"][0]["approved_by"], d["entries"][0]["revision"])' <<<"$OUT")" = "('active', 'uid:0', '', 1)" ] ||
  fail "client-set governance fields were stored: $OUT"
expect_ok "delete g1" wcli entry delete -entryID "$(json 'd["entries"][0]["id"]' <<<"$OUT")"
echo "[{\"spiffe_id\": \"spiffe://example.org/g3\", \"parent_id\": \"$AGENT\", \"selectors\": [\"unix:uid:33\"], \"state\": \"\", \"approved_by\": \"\"}]" >"$T/gov-empty.json"
OUT=$(wcli entry create -data "$T/gov-empty.json" -output json) || fail "empty governance fields: $OUT"
[ "$(json '(d["entries"][0]["state"], d["entries"][0]["created_by"], d["entries"][0]["approved_by"])' <<<"$OUT")" = "('active', 'uid:0', '')" ] ||
  fail "server-set governance fields: $OUT"
expect_ok "delete g3" wcli entry delete -entryID "$(json 'd["entries"][0]["id"]' <<<"$OUT")"
[ "$(count)" = 6 ] || fail "a failed batch stored something: count $(count)"

step "token generate"
expect_ok "token" wcli token generate
TOKEN=$(sed -n 's/^Token: //p' <<<"$OUT")
[[ "$TOKEN" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] ||
  fail "token format: $OUT"
OUT=$(wcli token generate -spiffeID spiffe://example.org/node/alias -ttl 1h -output json)
TOKEN2=$(json 'd["token"]' <<<"$OUT")
EXP=$(date -d "$(json 'd["expires_at"]' <<<"$OUT")" +%s)
NOW=$(date +%s)
[ $((EXP - NOW)) -gt 3500 ] && [ $((EXP - NOW)) -le 3601 ] || fail "token expiry $EXP vs now $NOW"
[ "$TOKEN" != "$TOKEN2" ] || fail "two equal tokens"

step "agents (none attested in this test)"
expect_ok "agent list" wcli agent list
assert_contains "$OUT" "Found 0 attested agents"
[ "$(wcli agent list -output json | json 'd["agents"]')" = "[]" ] || fail "agent list json"
for verb in show evict ban; do
  expect_fail "agent $verb unknown" wcli agent "$verb" -spiffeID "$AGENT"
  assert_contains "$OUT" "Error: no attested agent with SPIFFE ID $AGENT"
done

step "bundle show"
wcli bundle show >"$T/bundle.pem"
openssl x509 -in "$T/bundle.pem" -noout -ext subjectAltName,basicConstraints >"$T/root.txt" ||
  fail "bundle PEM does not parse"
assert_contains "$(cat "$T/root.txt")" "URI:spiffe://example.org"
assert_contains "$(cat "$T/root.txt")" "CA:TRUE"
wcli bundle show -format spiffe >"$T/bundle.json"
"$PY" - "$T/bundle.json" <<'EOF' || fail "spiffe bundle"
import json, sys
b = json.load(open(sys.argv[1]))
uses = sorted(k["use"] for k in b["keys"])
assert uses == ["jwt-svid", "x509-svid"], uses
for k in b["keys"]:
    if k["use"] == "x509-svid":
        assert len(k["x5c"]) == 1 and "kid" not in k
    else:
        assert k["kid"] and k["kty"] == "EC"
assert b["spiffe_sequence"] >= 1
EOF
[ "$(wcli bundle show -output json | json 'd["trust_domain"]')" = example.org ] || fail "bundle json"

step "x509 mint"
expect_ok "x509 mint -write" wcli x509 mint -spiffeID spiffe://example.org/web -ttl 10m \
  -dns web.local -write "$T/mint"
openssl verify -CAfile "$T/bundle.pem" "$T/mint/svid.pem" || fail "minted SVID does not verify"
openssl verify -CAfile "$T/mint/bundle.pem" "$T/mint/svid.pem" || fail "SVID vs written bundle"
[ "$(stat -c %a "$T/mint/key.pem")" = 600 ] || fail "key.pem is not 0600"
SAN=$(openssl x509 -in "$T/mint/svid.pem" -noout -ext subjectAltName)
assert_contains "$SAN" "URI:spiffe://example.org/web"
assert_contains "$SAN" "DNS:web.local"
[ "$(openssl x509 -in "$T/mint/svid.pem" -noout -pubkey)" = "$(openssl pkey -in "$T/mint/key.pem" -pubout)" ] ||
  fail "key.pem does not match the SVID"
END=$(date -d "$(openssl x509 -in "$T/mint/svid.pem" -noout -enddate | cut -d= -f2)" +%s)
[ $((END - $(date +%s))) -le 600 ] || fail "ttl 10m not applied"
wcli x509 mint -spiffeID spiffe://example.org/w2 >"$T/mint2.txt"
openssl x509 -in "$T/mint2.txt" -noout -subject >/dev/null || fail "printed SVID does not parse"
openssl pkey -in "$T/mint2.txt" -noout || fail "printed key does not parse"

step "jwt mint"
JWT=$(wcli jwt mint -spiffeID spiffe://example.org/web -audience a1 -audience a2 -ttl 60)
"$PY" - "$JWT" "$T/bundle.json" <<'EOF' || fail "jwt: $JWT"
import base64, json, sys, time
parts = sys.argv[1].split(".")
assert len(parts) == 3, parts
dec = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
h, c = dec(parts[0]), dec(parts[1])
assert h["alg"] == "ES256" and h["typ"] == "JWT" and h["kid"], h
kids = [k["kid"] for k in json.load(open(sys.argv[2]))["keys"] if k["use"] == "jwt-svid"]
assert h["kid"] in kids, (h, kids)
assert c["sub"] == "spiffe://example.org/web" and c["aud"] == ["a1", "a2"], c
assert 0 < c["exp"] - time.time() <= 61, c
EOF

step "restart keeps keys, entries and tokens"
wcli entry show -output json >"$T/entries.before"
stop_server
expect_fail "healthcheck when down" wcli healthcheck
assert_contains "$OUT" "Error: cannot connect to the server at $SERVER_SOCK"
HASH=$(printf %s "$TOKEN2" | sha256sum | cut -d' ' -f1 | tr a-f A-F)
[ "$(sqlite3 "$T/srv.data/datastore.sqlite3" "SELECT alias_spiffe_id FROM join_tokens WHERE hex(hash) = '$HASH'")" = spiffe://example.org/node/alias ] ||
  fail "join token not stored"
start_server srv -serverPort "$PORT"
cmp "$T/bundle.pem" <(wcli bundle show) || fail "bundle changed across restart"
wcli entry show -output json >"$T/entries.after"
cmp "$T/entries.before" "$T/entries.after" || fail "entries changed across restart"
[ "$(count)" = 6 ] || fail "count after restart"
openssl verify -CAfile <(wcli bundle show) "$T/mint/svid.pem" || fail "old SVID after restart"
wcli x509 mint -spiffeID spiffe://example.org/web -write "$T/mint3" >/dev/null
cmp <(openssl x509 -in "$T/mint/svid.pem" -noout -issuer) \
  <(openssl x509 -in "$T/mint3/svid.pem" -noout -issuer) || fail "a new CA after restart"
stop_server

pass
