#!/bin/bash
# Node API end to end: the real server and the test node client over real mTLS.
# join_token and x509pop attestation, the Sync stream (initial snapshot, a new entry
# pushed within 1 s, descendants, node aliases), X509-SVIDs that pass the SVID rules
# and chain to `bundle show`, JWT-SVIDs, refusals (unauthorized entry, used token,
# bad x509pop proofs), renewal (the replaced node SVID is refused once the new one is
# used), ban and evict (an x509pop agent's pre-eviction SVID stays refused after it
# re-attests).
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org

# uri_sans PEM: the URI SANs of the first certificate, one per line.
uri_sans() {
  openssl x509 -in "$1" -noout -ext subjectAltName | grep -o 'URI:[^, ]*' | sed 's/^URI://'
}

# snapshot FILE N: the entry lines of the N-th snapshot printed by `sync`, sorted.
snapshot() {
  awk -v n="$2" '/^---/{k++; next} k==n-1{print}' "$1" | sort
}

snapshots() { grep -c '^---' "$1" 2>/dev/null || true; }
has_snapshots() { [ "$(snapshots "$1")" -ge "$2" ]; }

step "site CA for x509pop and a node certificate"
openssl ecparam -name prime256v1 -genkey -noout -out "$T/site-ca.key" 2>/dev/null
openssl req -x509 -new -key "$T/site-ca.key" -subj "/CN=Site CA" -days 2 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
  -out "$T/site-ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/n1.ec" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$T/n1.ec" -out "$T/n1.key"
chmod 600 "$T/n1.key"
openssl req -new -key "$T/n1.key" -subj "/CN=node-1" -out "$T/n1.csr" 2>/dev/null
printf 'subjectAltName=DNS:node-1.example.org\nkeyUsage=critical,digitalSignature\n' >"$T/n1.ext"
openssl x509 -req -in "$T/n1.csr" -CA "$T/site-ca.pem" -CAkey "$T/site-ca.key" \
  -CAcreateserial -days 1 -extfile "$T/n1.ext" -out "$T/n1.pem" 2>/dev/null
# A certificate from a CA the server does not trust.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$T/rogue.key" -subj "/CN=rogue" -days 1 -out "$T/rogue.pem" 2>/dev/null
chmod 600 "$T/rogue.key"

step "start the server"
start_server srv -x509popCA "$T/site-ca.pem" -logLevel debug
wcli bundle show >"$T/roots.pem"
grep -q "BEGIN CERTIFICATE" "$T/roots.pem" || fail "bundle show printed no certificate"

step "join_token attestation"
TOK=$(wcli token generate | sed -n 's/^Token: //p')
[ -n "$TOK" ] || fail "no token"
expect_ok "attest-join" node attest-join -trustBundle "$T/roots.pem" -token "$TOK" -dir "$T/n-join"
A="$TDID/warden/agent/join_token/$TOK"
[ "$OUT" = "$A" ] || fail "agent ID: got '$OUT', want '$A'"
[ "$(uri_sans "$T/n-join/node.pem")" = "$A" ] || fail "node SVID URI SAN is not $A"
[ "$(stat -c %a "$T/n-join/node.key")" = 600 ] || fail "node.key is not 0600"

step "a used join token is refused"
expect_fail "token reuse" node attest-join -trustBundle "$T/roots.pem" -token "$TOK" -dir "$T/n-again"
assert_contains "$OUT" "PERMISSION_DENIED"
expect_fail "unknown token" node attest-join -trustBundle "$T/roots.pem" -token nosuchtoken -dir "$T/n-x"
assert_contains "$OUT" "PERMISSION_DENIED"

step "entries: two under the agent, one elsewhere"
E1=$(new_entry "$TDID/w1" "$A" unix:uid:1001 -dns w1.example.org)
E2=$(new_entry "$TDID/w2" "$A" unix:uid:1002)
EO=$(new_entry "$TDID/other" "$TDID/elsewhere" unix:uid:1003)
[ -n "$E1" ] && [ -n "$E2" ] && [ -n "$EO" ] || fail "entry create printed no IDs"
expect_ok "sync" node sync -dir "$T/n-join" -count 1 -timeout "$(scaled 10)"
printf '%s\n' "$OUT" >"$T/sync0.out"
[ "$(snapshot "$T/sync0.out" 1)" = "$(printf '%s\n' "$TDID/w1" "$TDID/w2")" ] ||
  fail "first snapshot is not exactly w1, w2: $OUT"

step "a new entry reaches a running sync stream within 1 s"
node sync -dir "$T/n-join" -count 3 -timeout "$(scaled 20)" >"$T/sync.out" 2>"$T/sync.err" &
SYNC=$!
PIDS+=("$SYNC")
wait_for has_snapshots "$T/sync.out" 1 || fail "no first snapshot"
t0=$(date +%s%N)
E3=$(new_entry "$TDID/w3" "$A" unix:uid:1004)
while [ "$(snapshots "$T/sync.out")" -lt 2 ]; do
  [ $(($(date +%s%N) - t0)) -lt $(($(scaled 1) * 1000000000)) ] ||
    fail "new entry not pushed within $(scaled 1) s"
  sleep 0.02
done
echo "pushed after $((($(date +%s%N) - t0) / 1000000)) ms"
assert_contains "$(snapshot "$T/sync.out" 2)" "$TDID/w3"
step "descendants: an entry under w1 is authorized too"
E4=$(new_entry "$TDID/w1/child" "$TDID/w1" unix:uid:1005)
wait "$SYNC" || fail "sync client: $(cat "$T/sync.err")"
[ "$(snapshot "$T/sync.out" 3)" = "$(printf '%s\n' "$TDID/w1" "$TDID/w1/child" "$TDID/w2" "$TDID/w3")" ] ||
  fail "third snapshot: $(cat "$T/sync.out")"
assert_not_contains "$(cat "$T/sync.out")" "$TDID/other"

step "X509-SVID for an authorized entry: SVID rules, chains to bundle show"
expect_ok "sign" node sign -dir "$T/n-join" -entry "$E1" -out "$T/svid1"
TEXT=$(openssl x509 -in "$T/svid1/svid.pem" -noout -text)
[ "$(uri_sans "$T/svid1/svid.pem")" = "$TDID/w1" ] || fail "SVID URI SAN"
[ "$(printf '%s\n' "$TEXT" | grep -o 'URI:' | wc -l)" = 1 ] || fail "not exactly one URI SAN"
assert_contains "$TEXT" "CA:FALSE"
assert_contains "$TEXT" "DNS:w1.example.org"
assert_contains "$TEXT" "Digital Signature"
expect_ok "verify" openssl verify -CAfile <(wcli bundle show) "$T/svid1/svid.pem"
expect_ok "sign descendant" node sign -dir "$T/n-join" -entry "$E4" -out "$T/svid4"

step "X509-SVID for an entry of another parent is refused"
expect_fail "sign other" node sign -dir "$T/n-join" -entry "$EO" -out "$T/svid-o"
assert_contains "$OUT" "PERMISSION_DENIED"
[ ! -e "$T/svid-o/svid.pem" ] || fail "an SVID was written for a refused entry"

step "JWT-SVID"
expect_ok "jwt" node jwt -dir "$T/n-join" -entry "$E2" -audience spiffe://example.org/db
assert_contains "$(printf '%s' "$OUT" | cut -d. -f2 | tr '_-' '/+' | base64 -d 2>/dev/null)" \
  "\"sub\":\"$TDID/w2\""
expect_fail "jwt other" node jwt -dir "$T/n-join" -entry "$EO" -audience x
assert_contains "$OUT" "PERMISSION_DENIED"

step "node alias from a join token"
TOK2=$(wcli token generate -spiffeID "$TDID/cluster/c1" | sed -n 's/^Token: //p')
expect_ok "attest-join 2" node attest-join -trustBundle "$T/roots.pem" -token "$TOK2" -dir "$T/n-alias"
new_entry "$TDID/cluster-wl" "$TDID/cluster/c1" unix:uid:1006 >/dev/null
expect_ok "sync alias" node sync -dir "$T/n-alias" -count 1 -timeout "$(scaled 10)"
[ "$(printf '%s\n' "$OUT" | grep -v '^---')" = "$TDID/cluster-wl" ] || fail "alias sync: $OUT"
expect_ok "sync 1" node sync -dir "$T/n-join" -count 1 -timeout "$(scaled 10)"
assert_not_contains "$OUT" "cluster-wl"

step "x509pop attestation"
FP=$(openssl x509 -in "$T/n1.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
expect_ok "x509pop" node attest-x509pop -trustBundle "$T/roots.pem" -cert "$T/n1.pem" \
  -key "$T/n1.key" -dir "$T/n-pop"
X="$TDID/warden/agent/x509pop/$FP"
[ "$OUT" = "$X" ] || fail "x509pop agent ID: got '$OUT', want '$X'"
[ "$(uri_sans "$T/n-pop/node.pem")" = "$X" ] || fail "x509pop node SVID URI SAN"
SHOW=$(wcli agent show -spiffeID "$X")
assert_contains "$SHOW" "x509pop:subject:cn:node-1"
assert_contains "$SHOW" "x509pop:san:dns:node-1.example.org"
CAFP=$(openssl x509 -in "$T/site-ca.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
assert_contains "$SHOW" "x509pop:ca:fingerprint:$CAFP"
# Re-attestation with the same certificate is allowed.
expect_ok "x509pop again" node attest-x509pop -trustBundle "$T/roots.pem" -cert "$T/n1.pem" \
  -key "$T/n1.key" -dir "$T/n-pop"
# A node alias matching the x509pop selectors gives the agent its entries.
wcli entry create -spiffeID "$TDID/site/nodes" -parentID "$TDID/warden/server" -node \
  -selector "x509pop:ca:fingerprint:$CAFP" >/dev/null
EP=$(new_entry "$TDID/site-wl" "$TDID/site/nodes" unix:uid:1007)
expect_ok "sign site" node sign -dir "$T/n-pop" -entry "$EP" -out "$T/svid-site"
expect_fail "sign site from join agent" node sign -dir "$T/n-join" -entry "$EP" -out "$T/x"

step "x509pop refusals: bad signature, untrusted certificate"
expect_fail "tampered" node attest-x509pop -trustBundle "$T/roots.pem" -cert "$T/n1.pem" \
  -key "$T/n1.key" -dir "$T/n-bad" -tamper
assert_contains "$OUT" "PERMISSION_DENIED"
expect_fail "rogue" node attest-x509pop -trustBundle "$T/roots.pem" -cert "$T/rogue.pem" \
  -key "$T/rogue.key" -dir "$T/n-rogue"
assert_contains "$OUT" "PERMISSION_DENIED"

step "renewal: the replaced node SVID works until the new one is used, then never"
OLD=$(openssl x509 -in "$T/n-pop/node.pem" -noout -serial)
cp -a "$T/n-pop" "$T/n-pop-old"
expect_ok "renew" node renew -dir "$T/n-pop"
[ "$OLD" != "$(openssl x509 -in "$T/n-pop/node.pem" -noout -serial)" ] || fail "serial unchanged"
expect_ok "old SVID right after renew" node sign -dir "$T/n-pop-old" -entry "$EP" -out "$T/svid-o1"
expect_ok "sign after renew" node sign -dir "$T/n-pop" -entry "$EP" -out "$T/svid-site2"
expect_fail "old SVID once the new one is used" node sign -dir "$T/n-pop-old" -entry "$EP" -out "$T/x"
assert_contains "$OUT" "PERMISSION_DENIED"
assert_contains "$OUT" "agent is not attested"
expect_fail "old SVID renew" node renew -dir "$T/n-pop-old"
assert_contains "$OUT" "PERMISSION_DENIED"
grep -q "refused .*not the agent's current node SVID agent_id=$X" "$SERVER_LOG" ||
  fail "refusal of the old SVID not logged"

step "ban: the open stream ends and the next calls are refused"
node sync -dir "$T/n-join" -timeout "$(scaled 20)" >"$T/ban.out" 2>"$T/ban.err" &
SYNC=$!
PIDS+=("$SYNC")
wait_for has_snapshots "$T/ban.out" 1 || fail "no snapshot before ban"
wcli agent ban -spiffeID "$A" >/dev/null
rc=0
wait "$SYNC" || rc=$?
[ "$rc" = 1 ] || fail "sync after ban exited $rc"
assert_contains "$(cat "$T/ban.err")" "PERMISSION_DENIED"
expect_fail "sign banned" node sign -dir "$T/n-join" -entry "$E1" -out "$T/x"
assert_contains "$OUT" "PERMISSION_DENIED"
expect_fail "renew banned" node renew -dir "$T/n-join"
assert_contains "$OUT" "PERMISSION_DENIED"

step "evict: refused until re-attested"
wcli agent evict -spiffeID "$X" >/dev/null
expect_fail "sign evicted" node sign -dir "$T/n-pop" -entry "$EP" -out "$T/x"
assert_contains "$OUT" "PERMISSION_DENIED"
cp -a "$T/n-pop" "$T/n-pop-evicted"
expect_ok "re-attest" node attest-x509pop -trustBundle "$T/roots.pem" -cert "$T/n1.pem" \
  -key "$T/n1.key" -dir "$T/n-pop"
expect_fail "pre-eviction SVID after re-attestation" node sign -dir "$T/n-pop-evicted" -entry "$EP" \
  -out "$T/x"
assert_contains "$OUT" "PERMISSION_DENIED"
expect_ok "sign re-attested" node sign -dir "$T/n-pop" -entry "$EP" -out "$T/svid-site3"
expect_fail "pre-eviction SVID, later" node sign -dir "$T/n-pop-evicted" -entry "$EP" -out "$T/x"
assert_contains "$OUT" "PERMISSION_DENIED"

step "a banned x509pop agent cannot re-attest"
wcli agent ban -spiffeID "$X" >/dev/null
expect_fail "x509pop banned" node attest-x509pop -trustBundle "$T/roots.pem" -cert "$T/n1.pem" \
  -key "$T/n1.key" -dir "$T/n-pop2"
assert_contains "$OUT" "PERMISSION_DENIED"

step "no secrets in the server log"
TOK3=$(wcli token generate | sed -n 's/^Token: //p')
assert_not_contains "$(cat "$SERVER_LOG")" "PRIVATE KEY"
assert_not_contains "$(cat "$SERVER_LOG")" "$TOK3"
assert_not_contains "$(cat "$SERVER_LOG")" nosuchtoken
stop_server
pass
