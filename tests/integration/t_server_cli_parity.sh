#!/usr/bin/env bash
# The admin CLI verbs a SPIRE user expects, on a real server: the entry JSON backup/restore
# round trip, entry update -data / clearing lists / no-change updates, entry delete -file,
# show and count filters, agent count/list filters and purge, jwt mint -write,
# healthcheck -shallow -verbose, logger get|set|reset, audit show|verify, help for every
# verb, booleans, -output json on every verb that prints, and the refusals of entries that
# can only go wrong (unknown selector types, federation without a bundle, past expiry,
# short TTLs).
. "$(dirname "$0")/lib.sh"

AGENT=spiffe://example.org/warden/agent/join_token/n1
json() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# Every line of stdin is JSON-parseable as one document.
is_json() { "$PY" -c 'import json,sys; json.load(sys.stdin)' || fail "not JSON: $1"; }
ids() { wcli entry show "$@" -output json | json '" ".join(sorted(e["spiffe_id"].rsplit("/", 1)[1] for e in d["entries"]))'; }
count() { wcli entry count "$@" -output json | json 'd["count"]'; }

start_server srv
store_bundle "$T/srv.data" other.org
store_bundle "$T/srv.data" third.org

step "refused: what can only go wrong"
expect_fail "unknown type" wcli entry create -spiffeID spiffe://example.org/x -parentID "$AGENT" \
  -selector k8s:ns:default
assert_contains "$OUT" "no attestor produces type \"k8s\""
expect_ok "unknown type, allowed" wcli entry create -spiffeID spiffe://example.org/plugin \
  -parentID "$AGENT" -selector k8s:ns:default -allowUnknownSelectorType
PLUGIN=$(sed -n 's/^Entry ID *: //p' <<<"$OUT")
expect_fail "no bundle" wcli entry create -spiffeID spiffe://example.org/x -parentID "$AGENT" \
  -selector unix:uid:1 -federatesWith nobundle.org
assert_contains "$OUT" "federates_with \"nobundle.org\": this server has no bundle"
expect_fail "past" wcli entry create -spiffeID spiffe://example.org/x -parentID "$AGENT" \
  -selector unix:uid:1 -entryExpiry "$(date -u -d '1 hour ago' +%Y-%m-%dT%H:%M:%SZ)"
assert_contains "$OUT" "is in the past"
expect_fail "short ttl" wcli entry create -spiffeID spiffe://example.org/x -parentID "$AGENT" \
  -selector unix:uid:1 -x509SVIDTTL 1s
assert_contains "$OUT" "x509_svid_ttl 1s is shorter than the server's minimum 30s"
[ "$(count)" = 1 ] || fail "a refused entry was stored"

step "entries for the round trip (booleans as -admin and -admin=false)"
wcli entry create -spiffeID spiffe://example.org/web -parentID "$AGENT" -selector unix:uid:1000 \
  -selector unix:gid:1000 -dns web.local -dns www.web.local -federatesWith other.org \
  -federatesWith third.org -hint web -admin -x509SVIDTTL 30m -jwtSVIDTTL 1m \
  -entryExpiry 2100-01-01T00:00:00Z >/dev/null
wcli entry create -spiffeID spiffe://example.org/db -parentID "$AGENT" -selector unix:uid:1000 \
  -federatesWith other.org -hint db -admin=false >/dev/null
wcli entry create -spiffeID spiffe://example.org/batch -parentID "$AGENT" -selector unix:uid:2000 \
  -selector unix:gid:2000 -selector unix:user:batch -entryExpiry 4102444800 >/dev/null
wcli entry create -spiffeID spiffe://example.org/node/rack1 -node \
  -selector "warden:agent_id:$AGENT" >/dev/null
[ "$(wcli entry show -spiffeID spiffe://example.org/web -output json | json 'd["entries"][0]["admin"]')" = True ] ||
  fail "-admin"
[ "$(wcli entry show -spiffeID spiffe://example.org/db -output json | json 'd["entries"][0]["admin"]')" = False ] ||
  fail "-admin=false"
[ "$(wcli entry show -spiffeID spiffe://example.org/batch -output json | json 'd["entries"][0]["expires_at"]')" = 2100-01-01T00:00:00Z ] ||
  fail "-entryExpiry as Unix seconds is shown in RFC 3339"

step "show and count filters"
[ "$(ids -federatesWith other.org)" = "db web" ] || fail "-federatesWith: $(ids -federatesWith other.org)"
[ "$(ids -federatesWith other.org -federatesWith third.org)" = "web" ] || fail "-federatesWith x2"
[ "$(ids -hint db)" = "db" ] || fail "-hint"
[ "$(ids -selector unix:uid:1000)" = "db web" ] || fail "superset (default)"
[ "$(ids -selector unix:uid:1000 -matchSelectorsOn exact)" = "db" ] || fail "exact"
[ "$(ids -selector unix:uid:1000 -selector unix:gid:1000 -matchSelectorsOn exact)" = "web" ] ||
  fail "exact x2"
[ "$(ids -selector unix:uid:1000 -selector unix:gid:1000 -selector unix:uid:2000 -matchSelectorsOn subset)" = "db web" ] ||
  fail "subset"
[ "$(ids -selector unix:gid:1000 -selector unix:user:batch -matchSelectorsOn any)" = "batch web" ] ||
  fail "any"
[ "$(ids -selector unix:uid:1000 -matchSelectorsOn superset -federatesWith third.org -hint web)" = "web" ] ||
  fail "combined"
[ "$(count)" = 5 ] || fail "count"
[ "$(count -federatesWith other.org)" = 2 ] || fail "count -federatesWith"
[ "$(count -selector unix:uid:1000 -matchSelectorsOn exact)" = 1 ] || fail "count exact"
expect_ok "count text" wcli entry count -hint web
assert_contains "$OUT" "1 registration entry"

step "update: clear lists, no-change, -data"
WEB=$(wcli entry show -spiffeID spiffe://example.org/web -output json | json 'd["entries"][0]["id"]')
expect_ok "no change" wcli entry update -entryID "$WEB" -hint web -dns web.local -dns www.web.local
assert_contains "$OUT" "No change: entry $WEB is already as given (revision 1)"
assert_contains "$OUT" "Revision         : 1"
OUT=$(wcli entry update -entryID "$WEB" -dns '' -federatesWith '' -hint '' -entryExpiry 0 \
  -admin=false -x509SVIDTTL 0 -output json)
[ "$(json '(d["revision"], d["dns_names"], d["federates_with"], d["hint"], d["expires_at"], d["admin"], d["x509_svid_ttl"])' <<<"$OUT")" = \
  "(2, [], [], '', None, False, 0)" ] || fail "cleared: $OUT"
expect_ok "restore web" wcli entry update -entryID "$WEB" -dns web.local -federatesWith other.org \
  -hint web -admin
assert_contains "$OUT" "Revision         : 3"
# Kept from the stored entry although the bundle is gone now: only what changes is checked.
"$PY" -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("DELETE FROM bundles WHERE trust_domain=?", ("other.org",)); c.commit()' \
  "$T/srv.data/datastore.sqlite3"
expect_ok "unrelated change" wcli entry update -entryID "$WEB" -hint web2
expect_fail "new federation without bundle" wcli entry update -entryID "$WEB" -federatesWith third.org -federatesWith gone.org
assert_contains "$OUT" "federates_with \"gone.org\": this server has no bundle"
store_bundle "$T/srv.data" other.org

step "backup (entry show -output json) and restore (entry create -data)"
wcli entry show -output json >"$T/backup.json"
expect_ok "delete -file" wcli entry delete -file "$T/backup.json"
[ "$(grep -c '^Deleted entry ' <<<"$OUT")" = 5 ] || fail "delete -file: $OUT"
[ "$(count)" = 0 ] || fail "count after delete -file"
expect_fail "restore without -allowUnknownSelectorType" wcli entry create -data "$T/backup.json"
assert_contains "$OUT" "no entries were created"
[ "$(count)" = 0 ] || fail "a refused restore stored entries"
expect_ok "restore" wcli entry create -data "$T/backup.json" -allowUnknownSelectorType
wcli entry show -output json >"$T/restored.json"
"$PY" - "$T/backup.json" "$T/restored.json" <<'EOF' || fail "restore differs"
import json, sys
a, b = (json.load(open(p))["entries"] for p in sys.argv[1:3])
strip = lambda es: [{k: v for k, v in e.items() if k not in ("created_at", "revision")} for e in es]
assert strip(a) == strip(b), (a, b)
assert all(e["revision"] == 1 for e in b), b
EOF
expect_fail "restore twice" wcli entry create -data "$T/backup.json" -allowUnknownSelectorType
assert_contains "$OUT" "already exists; no entries were created"
[ "$(count)" = 5 ] || fail "count after a refused second restore"

step "entry update -data: whole entries, per-entry results"
"$PY" - "$T/restored.json" "$T/update.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for e in d["entries"]:
    if e["spiffe_id"].endswith("/db"):
        e["hint"] = "database"
        e["dns_names"] = ["db.local"]
json.dump(d, open(sys.argv[2], "w"))
EOF
expect_ok "update -data" wcli entry update -data "$T/update.json" -allowUnknownSelectorType
[ "$(grep -c '^Updated entry ' <<<"$OUT")" = 1 ] || fail "update -data: $OUT"
[ "$(grep -c '^No change: entry ' <<<"$OUT")" = 4 ] || fail "update -data: $OUT"
[ "$(ids -hint database)" = db ] || fail "update -data did not apply"
[ "$(wcli entry show -hint database -output json | json 'd["entries"][0]["revision"]')" = 2 ] ||
  fail "revision after update -data"
[ "$(wcli entry show -spiffeID spiffe://example.org/batch -output json | json 'd["entries"][0]["revision"]')" = 1 ] ||
  fail "an unchanged entry got a new revision"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); d["entries"][0]["id"]="doesnotexist"; d["entries"][1]["selectors"]=["unix:uid:x"]; json.dump(d, open(sys.argv[2], "w"))' \
  "$T/update.json" "$T/update-bad.json"
expect_fail "update -data with a bad entry" wcli entry update -data "$T/update-bad.json"
assert_contains "$OUT" "invalid selector"
OUT=$(wcli entry update -data "$T/restored.json" -allowUnknownSelectorType -output json) ||
  fail "update -data json: $OUT"
[ "$(json '[r["result"] for r in d["results"]].count("updated")' <<<"$OUT")" = 1 ] || fail "json results: $OUT"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); d["entries"][0]["id"]="doesnotexist"; json.dump(d, open(sys.argv[2], "w"))' \
  "$T/restored.json" "$T/update-missing.json"
expect_fail "update -data with a missing entry" wcli entry update -data "$T/update-missing.json" \
  -allowUnknownSelectorType
assert_contains "$OUT" "Error: entry 1 of 5 (doesnotexist): no entry with ID doesnotexist"
assert_contains "$OUT" "Error: 1 of 5 entries were not updated"

step "entry delete -file: goes on after a missing ID, exit 1"
echo "{\"ids\": [\"$PLUGIN\", \"doesnotexist\", \"$WEB\"]}" >"$T/del.json"
expect_fail "delete -file" wcli entry delete -file "$T/del.json"
assert_contains "$OUT" "Error: entry 2 of 3 (doesnotexist): no entry with ID doesnotexist"
[ "$(count)" = 3 ] || fail "delete -file did not delete the others"

step "agents: count and list filters, purge (records dated by hand: time does not pass here)"
NOW=$(date +%s)
"$PY" - "$T/srv.data/datastore.sqlite3" "$NOW" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
now = int(sys.argv[2])
td = "spiffe://example.org/warden/agent/"
for name, kind, exp, banned, sel in (
        ("join_token/old", "join_token", now - 2 * 86400, 0, ("warden", "agent_id:" + td + "join_token/old")),
        ("x509pop/banned", "x509pop", now - 2 * 86400, 1, ("x509pop", "subject:cn:n2")),
        ("join_token/live", "join_token", now + 86400, 0, ("warden", "agent_id:" + td + "join_token/live"))):
    c.execute("INSERT INTO agents VALUES (?, ?, 'ab12', ?, ?, ?, ?)", (td + name, kind, exp, banned, now - 3 * 86400, now))
    c.execute("INSERT INTO agent_selectors VALUES (?, ?, ?)", (td + name,) + sel)
c.commit()
EOF
acount() { wcli agent count "$@" -output json | json 'd["count"]'; }
[ "$(acount)" = 3 ] || fail "agent count"
[ "$(acount -attestationType join_token)" = 2 ] || fail "-attestationType"
[ "$(acount -banned true)" = 1 ] || fail "-banned true"
[ "$(acount -banned false)" = 2 ] || fail "-banned false"
[ "$(acount -expiresBefore "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" = 2 ] || fail "-expiresBefore"
[ "$(acount -selector x509pop:subject:cn:n2)" = 1 ] || fail "-selector"
[ "$(acount -selector x509pop:subject:cn:n2 -selector unix:uid:1 -matchSelectorsOn any)" = 1 ] ||
  fail "-matchSelectorsOn any"
[ "$(wcli agent list -attestationType x509pop -output json | json 'd["agents"][0]["expires_at"][-1]')" = Z ] ||
  fail "agent expiry not RFC 3339"
expect_ok "count text" wcli agent count -banned true
assert_contains "$OUT" "1 attested agent"
expect_ok "purge -dryRun" wcli agent purge -expiredFor 1d -dryRun
assert_contains "$OUT" "Would purge 1 agent expired for 1d or longer"
assert_contains "$OUT" "  spiffe://example.org/warden/agent/join_token/old"
assert_contains "$OUT" "Kept spiffe://example.org/warden/agent/x509pop/banned: banned"
[ "$(acount)" = 3 ] || fail "-dryRun purged"
expect_ok "purge 3d: nothing" wcli agent purge -expiredFor 3d
assert_contains "$OUT" "Purged 0 agents"
OUT=$(wcli agent purge -expiredFor 1d -output json)
[ "$(json 'd["purged"]' <<<"$OUT")" = "['spiffe://example.org/warden/agent/join_token/old']" ] ||
  fail "purge json: $OUT"
[ "$(acount)" = 2 ] || fail "count after purge"
grep -q "admin: agent purged agent_id=spiffe://example.org/warden/agent/join_token/old expired=" \
  "$SERVER_LOG" || fail "purge not logged"

step "jwt mint -write"
expect_ok "jwt -write" wcli jwt mint -spiffeID spiffe://example.org/w -audience a -write "$T/token.jwt"
assert_contains "$OUT" "JWT-SVID written to $T/token.jwt (expires at "
[ "$(stat -c %a "$T/token.jwt")" = 600 ] || fail "token file mode"
[ "$(tr -cd . <"$T/token.jwt" | wc -c)" = 2 ] || fail "not a JWT: $(cat "$T/token.jwt")"
[ "$(wcli jwt mint -spiffeID spiffe://example.org/w -audience a -write "$T/token.jwt" -output json | json 'd["token_path"]')" = "$T/token.jwt" ] ||
  fail "jwt -write json"

step "healthcheck -shallow -verbose"
expect_ok "verbose" wcli healthcheck -verbose
assert_contains "$OUT" "Checking the server at $SERVER_SOCK (full check)..."
assert_contains "$OUT" "Datastore: usable (3 entries, 2 agents)"
assert_contains "$OUT" "Server is healthy"
expect_ok "shallow" wcli healthcheck -shallow -verbose
assert_contains "$OUT" "Datastore: not checked (-shallow)"
[ "$(wcli healthcheck -shallow -output json | json '(d["healthy"], d["datastore_checked"])')" = "(True, False)" ] ||
  fail "healthcheck json"

step "logger get|set|reset at run time"
expect_ok "get" wcli logger get
assert_contains "$OUT" "Log level: info (launch level: info)"
expect_ok "set" wcli logger set -level debug
assert_contains "$OUT" "Log level: debug"
wcli entry count >/dev/null
grep -q "DEBUG server: admin: CountEntries from uid 0" "$SERVER_LOG" || fail "debug not applied"
[ "$(wcli logger get -output json | json 'd["current_level"]')" = debug ] || fail "get json"
expect_ok "reset" wcli logger reset
assert_contains "$OUT" "Log level: info (launch level: info)"
chmod 0777 "$SERVER_SOCK"
expect_fail "not an admin" as_uid 65534 "$SERVER_BIN" logger set -socketPath "$SERVER_SOCK" -level debug
assert_contains "$OUT" "permission denied: uid 65534 is not an admin"
[ "$(wcli logger get -output json | json 'd["current_level"]')" = info ] || fail "a non-admin changed the level"

step "-output json on every verb that prints"
LIVE=spiffe://example.org/warden/agent/join_token/live
for cmd in "entry show" "entry count" "token generate" "agent list" "agent count" \
  "agent show -spiffeID $LIVE" "agent purge -dryRun" "bundle show" "bundle show -format spiffe" \
  "x509 mint -spiffeID spiffe://example.org/w" "jwt mint -spiffeID spiffe://example.org/w -audience a" \
  "healthcheck" "logger get" "logger set -level info" "logger reset" "audit show" "audit verify" \
  "entry create -spiffeID spiffe://example.org/j -parentID $AGENT -selector unix:uid:77" \
  "agent ban -spiffeID $LIVE" "agent evict -spiffeID $LIVE"; do
  # shellcheck disable=SC2086
  set -- $cmd
  if [ "$1" = healthcheck ]; then
    wcli healthcheck -output json | is_json "$cmd"
  else
    wcli "$1" "$2" -output json "${@:3}" | is_json "$cmd"
  fi
done
J=$(wcli entry show -spiffeID spiffe://example.org/j -output json | json 'd["entries"][0]["id"]')
wcli entry update -entryID "$J" -hint j -output json | is_json "entry update"
wcli entry delete -entryID "$J" -output json | is_json "entry delete"
"$SERVER_BIN" validate -trustDomain example.org -output json | is_json validate

step "help VERB and VERB -h for every verb and sub-verb"
for v in "entry create" "entry show" "entry update" "entry delete" "entry count" "token generate" \
  "agent list" "agent show" "agent count" "agent evict" "agent ban" "agent purge" "bundle show" \
  "x509 mint" "jwt mint" "logger get" "logger set" "logger reset" "audit show" "audit verify"; do
  # shellcheck disable=SC2086
  set -- $v
  expect_ok "help $v" "$SERVER_BIN" help "$1" "$2"
  assert_contains "$OUT" "Usage: warden-server $v"
  expect_ok "$v -h" "$SERVER_BIN" "$1" "$2" -h
  assert_contains "$OUT" "Usage: warden-server $v"
  expect_ok "$1 help $2" "$SERVER_BIN" "$1" help "$2"
  assert_contains "$OUT" "Usage: warden-server $v"
done
for n in entry token agent bundle x509 jwt logger audit; do
  expect_ok "help $n" "$SERVER_BIN" help "$n"
  assert_contains "$OUT" "Usage: warden-server $n <command>"
  expect_ok "$n -h" "$SERVER_BIN" "$n" -h
  assert_contains "$OUT" "Usage: warden-server $n <command>"
done
for c in run validate healthcheck; do
  expect_ok "help $c" "$SERVER_BIN" help "$c"
  assert_contains "$OUT" "Usage: warden-server $c"
  assert_contains "$OUT" "-socketPath"
done
expect_fail "help of nothing" "$SERVER_BIN" help entry nosuchverb
assert_contains "$OUT" "Error: unknown command \"entry nosuchverb\""

step "validate: every problem on its own line, without starting"
cat >"$T/good.conf" <<EOF
trustDomain = "example.org"
dataDir = "$T/srv.data"
EOF
expect_ok "valid" "$SERVER_BIN" validate -config "$T/good.conf"
assert_contains "$OUT" "Configuration is valid"
cat >"$T/bad.conf" <<EOF
trustDomain = "Example.org"
logLevel = "loud"
defaultX509SVIDTTL = "10s"
bindAddress = "localhost"
EOF
rc=0
OUT=$("$SERVER_BIN" validate -config "$T/bad.conf" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "validate bad: exit $rc"
[ "$(grep -c '^Error: ' <<<"$OUT")" = 4 ] || fail "one line per problem: $OUT"
assert_contains "$OUT" "Error: -logLevel: unknown level \"loud\""
assert_contains "$OUT" "Error: -trustDomain: invalid trust domain \"Example.org\""
assert_contains "$OUT" "Error: -bindAddress: not an IP address: \"localhost\""
assert_contains "$OUT" "Error: -defaultX509SVIDTTL: 10s is shorter than -minX509SVIDTTL 30s"
expect_ok "flags win over the file" "$SERVER_BIN" validate -config "$T/bad.conf" \
  -trustDomain example.org -logLevel debug -defaultX509SVIDTTL 1h -bindAddress 127.0.0.1
chmod 0777 "$T/srv.data"
expect_fail "unsafe data dir" "$SERVER_BIN" validate -config "$T/good.conf"
assert_contains "$OUT" "Error: -dataDir $T/srv.data is writable by group or others (mode 0777)"
chmod 0700 "$T/srv.data"
[ "$("$SERVER_BIN" validate -config "$T/bad.conf" -output json | json 'len(d["problems"])')" = 4 ] ||
  fail "validate json"
expect_ok "the running server is untouched" wcli healthcheck

stop_server
pass
