#!/usr/bin/env bash
# warden-server: malformed input for every flag gets one specific "Error: ..." line and a
# non-zero exit, and leaves the datastore unchanged.
. "$(dirname "$0")/lib.sh"

TD=example.org
P=spiffe://example.org/warden/agent/join_token/n1
count() { wcli entry count -output json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }

# bad "message" CMD...: CMD fails (exit 1) with exactly one line, "Error: ..." containing message.
bad() {
  local want=$1 rc=0
  shift
  OUT=$("$@" 2>&1) || rc=$?
  [ "$rc" -eq 1 ] || fail "$*: exit $rc (want 1): $OUT"
  [ "$(printf '%s\n' "$OUT" | wc -l)" -eq 1 ] || fail "$*: more than one line: $OUT"
  assert_contains "$OUT" "Error: $want" "$*"
}

step "daemon flags and config file"
run() { "$SERVER_BIN" run -dataDir "$T/bad.data" -socketPath "$T/bad.sock" "$@"; }
bad "-trustDomain is required" run
bad "-trustDomain: invalid trust domain \"Example.ORG\": bad trust domain character" run -trustDomain Example.ORG
bad "-serverPort: not a port number: \"65536\"" run -trustDomain a.b -serverPort 65536
bad "-serverPort: not a port number: \"-1\"" run -trustDomain a.b -serverPort -1
bad "-caKeyType: unknown key type \"ed25519\"" run -trustDomain a.b -caKeyType ed25519
bad "-caTTL: not a duration" run -trustDomain a.b -caTTL 1y
bad "-defaultX509SVIDTTL: must be longer than 0s" run -trustDomain a.b -defaultX509SVIDTTL 0s
bad "-defaultJWTSVIDTTL: not a duration" run -trustDomain a.b -defaultJWTSVIDTTL 5min
bad "-bindAddress: not an IP address: \"example.com\"" run -trustDomain a.b -bindAddress example.com
bad "-socketPath: must be an absolute path" run -trustDomain a.b -socketPath rel/s.sock
bad "-upstreamCA: expected CERT.pem,KEY.pem" run -trustDomain a.b -upstreamCA ca.pem
bad "-upstreamCA: cannot read $T/none.pem" run -trustDomain a.b -upstreamCA "$T/none.pem,$T/none.key"
bad "-x509popCA: cannot read $T/none.pem" run -trustDomain a.b -x509popCA "$T/none.pem"
bad "-adminUIDs: no such user or bad uid \"no-such-user-here\"" run -trustDomain a.b -adminUIDs no-such-user-here
bad "-logLevel: unknown level \"chatty\"" run -trustDomain a.b -logLevel chatty
bad "unknown flag: -trustdomain" run -trustdomain a.b
bad "unexpected argument \"now\"" run -trustDomain a.b now
printf 'trustDomain = "a.b"\nserverPort = "x"\n' >"$T/port.conf"
bad "$T/port.conf:2: serverPort: not a port number" run -config "$T/port.conf"
printf 'trustDomain = "a.b"\ncolour = red\n' >"$T/key.conf"
bad "$T/key.conf:2: no such option 'colour'" run -config "$T/key.conf"
printf 'trustDomain = { "a.b" \n' >"$T/broken.conf"
bad "$T/broken.conf" run -config "$T/broken.conf"
bad "$T/none.conf" run -config "$T/none.conf"
[ ! -e "$T/bad.data" ] || fail "a refused configuration created the data directory"
"$SERVER_BIN" run -h >"$T/help.txt" || fail "run -h"
assert_contains "$(cat "$T/help.txt")" "-defaultX509SVIDTTL"

step "a port that is taken"
"$PY" -c 'import socket,time,sys; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)' >"$T/busy.port" &
PIDS+=($!)
wait_for test -s "$T/busy.port"
rc=0
"$SERVER_BIN" run -trustDomain a.b -dataDir "$T/busy.data" -socketPath "$T/busy.sock" \
  -serverPort "$(cat "$T/busy.port")" >"$T/busy.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "server on a busy port: exit $rc"
grep -q "Cannot listen on 127.0.0.1:$(cat "$T/busy.port"): address in use" "$T/busy.log" ||
  fail "busy port not named"
[ ! -e "$T/busy.data" ] || fail "a failed start left $T/busy.data behind"

step "CLI input errors leave the datastore unchanged"
start_server srv
wcli entry create -spiffeID spiffe://example.org/web -parentID "$P" -selector unix:uid:1 >/dev/null
BEFORE=$(wcli entry show -output json)
c() { wcli entry create -parentID "$P" "$@"; }
bad "invalid -spiffeID \"web\": wrong scheme" c -spiffeID web -selector unix:uid:2
bad "invalid -spiffeID \"spiffe://example.org\": " c -spiffeID spiffe://example.org -selector unix:uid:2
bad "invalid entry: spiffe_id is not in the server's trust domain (example.org)" c -spiffeID spiffe://evil.org/web -selector unix:uid:2
bad "invalid entry: parent_id is not in the server's trust domain (example.org)" wcli entry create -spiffeID spiffe://example.org/x -parentID spiffe://evil.org/agent -selector unix:uid:2
bad "invalid -parentID \"spiffe://example.org//a\": empty segment" wcli entry create -spiffeID spiffe://example.org/x -parentID spiffe://example.org//a -selector unix:uid:2
bad "invalid -selector \"unix\": " c -spiffeID spiffe://example.org/x -selector unix
bad "invalid -selector \"unix:uid:01\": " c -spiffeID spiffe://example.org/x -selector unix:uid:01
bad "invalid -selector \"UNIX:uid:1\": " c -spiffeID spiffe://example.org/x -selector UNIX:uid:1
bad "-x509SVIDTTL: not a duration" c -spiffeID spiffe://example.org/x -selector unix:uid:2 -x509SVIDTTL soon
bad "-jwtSVIDTTL: must be between 0s and" c -spiffeID spiffe://example.org/x -selector unix:uid:2 -jwtSVIDTTL 400d
bad "-entryExpiry: expected a time as 2026-01-01T00:00:00Z or Unix seconds, got \"tomorrow\"" c -spiffeID spiffe://example.org/x -selector unix:uid:2 -entryExpiry tomorrow
bad "-entryExpiry: expected a time" c -spiffeID spiffe://example.org/x -selector unix:uid:2 -entryExpiry 2030-02-30T00:00:00Z
bad "invalid entry: expires_at 2020-01-01T00:00:00Z is in the past (now " c -spiffeID spiffe://example.org/x -selector unix:uid:2 -entryExpiry 2020-01-01T00:00:00Z
bad "invalid entry: expires_at 1970-01-01T00:00:01Z is in the past" c -spiffeID spiffe://example.org/x -selector unix:uid:2 -entryExpiry 1
bad "invalid entry: x509_svid_ttl 29s is shorter than the server's minimum 30s (-minX509SVIDTTL)" c -spiffeID spiffe://example.org/x -selector unix:uid:2 -x509SVIDTTL 29s
bad "invalid entry: jwt_svid_ttl 9s is shorter than the server's minimum 10s (-minJWTSVIDTTL)" c -spiffeID spiffe://example.org/x -selector unix:uid:2 -jwtSVIDTTL 9s
bad "invalid entry: federates_with \"other.org\": this server has no bundle for that trust domain" c -spiffeID spiffe://example.org/x -selector unix:uid:2 -federatesWith other.org
bad "invalid entry: selector \"uid:1000\": no attestor produces type \"uid\" (did you mean \"unix:uid:1000\"?); workload entries take unix:uid, unix:user, unix:gid, unix:group, unix:supplementary_gid, unix:supplementary_group, unix:path, unix:sha256, systemd:id, systemd:fragment_path (-allowUnknownSelectorType stores it anyway)" c -spiffeID spiffe://example.org/x -selector uid:1000
bad "invalid entry: selector \"k8s:ns:default\": no attestor produces type \"k8s\"; workload entries take unix:uid" c -spiffeID spiffe://example.org/x -selector k8s:ns:default
bad "invalid entry: selector \"warden:agent_id:$P\" matches agents, not workloads: use it on a node alias (-node)" c -spiffeID spiffe://example.org/x -selector "warden:agent_id:$P"
bad "invalid entry: selector \"unix:uid:2\" is a workload selector, but node aliases match agents, by warden:agent_id, x509pop:subject:cn, x509pop:ca:fingerprint, x509pop:san:dns" c -spiffeID spiffe://example.org/x -selector unix:uid:2 -node
bad "invalid entry: selector \"x509pop:serial:1\": no attestor produces this key of type \"x509pop\"; node aliases take warden:agent_id" c -spiffeID spiffe://example.org/x -selector x509pop:serial:1 -node
bad "invalid -dns \"-bad-.example\"" c -spiffeID spiffe://example.org/x -selector unix:uid:2 -dns -bad-.example
bad "invalid -federatesWith \"Other.Org\"" c -spiffeID spiffe://example.org/x -selector unix:uid:2 -federatesWith Other.Org
bad "invalid entry: federates_with names the server's own trust domain" c -spiffeID spiffe://example.org/x -selector unix:uid:2 -federatesWith example.org
bad "an entry with the same SPIFFE ID, parent ID and selectors already exists" c -spiffeID spiffe://example.org/web -selector unix:uid:1
bad "-spiffeID is required" c -selector unix:uid:2
bad "at least one -selector is required" c -spiffeID spiffe://example.org/x
bad "-parentID is required" wcli entry create -spiffeID spiffe://example.org/x -selector unix:uid:2
bad "-data cannot be combined" c -data "$T/x.json"
bad "cannot read -data file $T/x.json" wcli entry create -data "$T/x.json"
bad "unknown flag: -spiffeId" c -spiffeId spiffe://example.org/x
bad "-hint: missing value" c -spiffeID spiffe://example.org/x -selector unix:uid:2 -hint
bad "unexpected argument \"extra\"" wcli entry count extra
bad "-output: expected text or json, got \"yaml\"" wcli entry count -output yaml
bad "no entry with ID 0123abcd" wcli entry show -entryID 0123abcd
bad "invalid entry ID" wcli entry show -entryID '../etc'
bad "-entryID cannot be combined with other filters" wcli entry show -entryID x -spiffeID spiffe://example.org/web
bad "no entry with ID 0123abcd" wcli entry update -entryID 0123abcd -hint x
bad "-entryID is required" wcli entry update -hint x
bad "no entry with ID 0123abcd" wcli entry delete -entryID 0123abcd
bad "-entryID is required (or -file FILE)" wcli entry delete
bad "-entryID and -file cannot be combined" wcli entry delete -entryID x -file "$T/x.json"
bad "cannot read -file $T/x.json" wcli entry delete -file "$T/x.json"
bad "-matchSelectorsOn: expected exact, subset, superset or any, got \"all\"" wcli entry show -selector unix:uid:1 -matchSelectorsOn all
bad "-banned: expected true or false" wcli agent list -banned yes
bad "-expiresBefore: expected a time" wcli agent count -expiresBefore soon
bad "-expiredFor: not a duration" wcli agent purge -expiredFor 1w
bad "-level is required" wcli logger set
bad "-level: unknown level \"loud\"" wcli logger set -level loud
bad "invalid -spiffeID \"nope\"" wcli token generate -spiffeID nope
bad "alias SPIFFE ID is not in the server's trust domain (example.org)" wcli token generate -spiffeID spiffe://other.org/n
bad "-ttl: not a duration" wcli token generate -ttl 1x
bad "-ttl: must be longer than 0s" wcli token generate -ttl 0
bad "invalid -spiffeID \"agent\"" wcli agent show -spiffeID agent
bad "-spiffeID is required" wcli agent ban
bad "-format: expected pem or spiffe, got \"der\"" wcli bundle show -format der
bad "SPIFFE ID spiffe://other.org/w is not in the server's trust domain (example.org)" wcli x509 mint -spiffeID spiffe://other.org/w
bad "invalid -spiffeID \"spiffe://example.org\": " wcli x509 mint -spiffeID spiffe://example.org
bad "invalid -dns \"a..b\"" wcli x509 mint -spiffeID spiffe://example.org/w -dns a..b
bad "-ttl: not a duration" wcli x509 mint -spiffeID spiffe://example.org/w -ttl x
bad "at least one -audience is required" wcli jwt mint -spiffeID spiffe://example.org/w
bad "SPIFFE ID spiffe://other.org/w is not in the server's trust domain" wcli jwt mint -spiffeID spiffe://other.org/w -audience a
# the server's and the agents' own IDs are never minted (they authenticate the node API)
bad "SPIFFE ID spiffe://example.org/warden/server is in the reserved /warden namespace" wcli x509 mint -spiffeID spiffe://example.org/warden/server
bad "SPIFFE ID $P is in the reserved /warden namespace" wcli x509 mint -spiffeID "$P"
bad "SPIFFE ID spiffe://example.org/warden is in the reserved /warden namespace" wcli jwt mint -spiffeID spiffe://example.org/warden -audience a
bad "SPIFFE ID spiffe://example.org/warden/server is in the reserved /warden namespace" wcli jwt mint -spiffeID spiffe://example.org/warden/server -audience a
bad "unknown command \"entry list\"" "$SERVER_BIN" entry list
bad "unknown command \"frobnicate\"" "$SERVER_BIN" frobnicate
[ "$(wcli entry show -output json)" = "$BEFORE" ] || fail "the datastore changed"
[ "$(count)" = 1 ] || fail "entry count changed"

step "the admin API itself: malformed requests and caps (raw grpcio client)"
mkdir "$T/pyproto"
WEB=$(wcli entry show -output json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["entries"][0]["id"])')
"$PY" - "$SERVER_SOCK" "$WARDEN_SOURCE_DIR/proto" "$T/pyproto" "$WEB" "$P" <<'EOF' || fail "raw admin API"
import subprocess, sys
import grpc
sock, protodir, out, web_id, parent = sys.argv[1:6]
subprocess.run(["protoc", "-I", protodir, "--python_out=" + out, "warden/admin/v1/admin.proto",
                "warden/types/v1/types.proto"], check=True)
sys.path.insert(0, out)
from warden.admin.v1 import admin_pb2 as a
from warden.types.v1 import types_pb2 as t

ch = grpc.insecure_channel("unix:" + sock)


def raw(method, req):
    data = req if isinstance(req, bytes) else req.SerializeToString()
    return ch.unary_unary("/warden.admin.v1.Admin/" + method)(data, timeout=10)


def expect(method, req, code, text):
    try:
        raw(method, req)
    except grpc.RpcError as e:
        assert e.code() == code and text in e.details(), (method, e.code(), e.details())
        return
    raise AssertionError(method + " succeeded")


def entry(i, n_sel=1):
    return t.Entry(spiffe_id="spiffe://example.org/raw/%d" % i, parent_id="spiffe://example.org/p",
                   selectors=[t.Selector(type="unix", value="uid:%d" % s) for s in range(n_sel)])


C = grpc.StatusCode
expect("GetEntry", b"\xff\xff\xff", C.INVALID_ARGUMENT, "malformed request")
expect("BatchCreateEntry", a.BatchCreateEntryRequest(), C.INVALID_ARGUMENT, "no entries")
expect("BatchCreateEntry", a.BatchCreateEntryRequest(entries=[entry(i) for i in range(1001)]),
       C.RESOURCE_EXHAUSTED, "too many entries in one batch (at most 1000)")
res = a.BatchCreateEntryResponse.FromString(
    raw("BatchCreateEntry", a.BatchCreateEntryRequest(entries=[entry(1), entry(2, 65)])))
assert [r.status for r in res.results] == [10, 3], res
assert "too many selectors" in res.results[1].message, res
expect("UpdateEntry", a.UpdateEntryRequest(), C.INVALID_ARGUMENT, "missing entry ID")
# The governance fields are the server's: set by a client on create or update, ignored (so
# that `entry show -output json` reads back), never stored.
stored = t.Entry.FromString(raw("GetEntry", a.GetEntryRequest(id=web_id)))
for field in ("state", "created_by", "approved_by"):
    web = t.Entry()
    web.CopyFrom(stored)
    setattr(web, field, "revoked" if field == "state" else "uid:4242")
    got = t.Entry.FromString(raw("UpdateEntry", a.UpdateEntryRequest(entry=web)))
    assert got == stored, (field, got)  # nothing else changed: no new revision either
    new = t.Entry(spiffe_id="spiffe://example.org/gov", parent_id=parent,
                  selectors=[t.Selector(type="unix", value="uid:9")])
    setattr(new, field, "revoked" if field == "state" else "uid:4242")
    res = a.BatchCreateEntryResponse.FromString(
        raw("BatchCreateEntry", a.BatchCreateEntryRequest(entries=[new])))
    assert [r.status for r in res.results] == [0], res
    e = res.results[0].entry
    assert (e.state, e.created_by, e.approved_by) == ("active", "uid:0", ""), res
    raw("DeleteEntry", a.DeleteEntryRequest(id=e.id))
expect("ListEntries", a.ListEntriesRequest(match_selectors_on="all"), C.INVALID_ARGUMENT,
       "unknown selector match \"all\"")
expect("ListEntries", a.ListEntriesRequest(by_federates_with=["Bad.Org"]), C.INVALID_ARGUMENT,
       "invalid federates_with filter")
expect("ListAgents", a.ListAgentsRequest(by_banned="maybe"), C.INVALID_ARGUMENT,
       "banned filter must be true or false")
expect("PurgeAgents", a.PurgeAgentsRequest(expired_for=-1), C.INVALID_ARGUMENT,
       "expired_for out of range")
expect("SetLogger", a.SetLoggerRequest(level="loud"), C.INVALID_ARGUMENT, "unknown log level")
expect("ListEntries", a.ListEntriesRequest(by_spiffe_id="nope"), C.INVALID_ARGUMENT,
       "invalid SPIFFE ID filter")
expect("ListEntries", a.ListEntriesRequest(by_selectors=[t.Selector(type="unix", value="uid:x")]),
       C.INVALID_ARGUMENT, "invalid selector filter")
expect("CreateJoinToken", a.CreateJoinTokenRequest(ttl=-5), C.INVALID_ARGUMENT,
       "invalid token TTL")
expect("MintX509SVID", a.MintX509SVIDRequest(spiffe_id="spiffe://example.org/w", csr=b"junk"),
       C.INVALID_ARGUMENT, "invalid CSR")
expect("MintX509SVID", a.MintX509SVIDRequest(spiffe_id="spiffe://example.org/w",
                                             csr=b"x" * 20000), C.INVALID_ARGUMENT, "invalid CSR")
expect("MintJWTSVID", a.MintJWTSVIDRequest(spiffe_id="spiffe://example.org/w",
                                           audience=["a"] * 33), C.INVALID_ARGUMENT,
       "too many audiences")
expect("MintJWTSVID", a.MintJWTSVIDRequest(spiffe_id="spiffe://example.org/w", audience=[""]),
       C.INVALID_ARGUMENT, "audience must be")
expect("EvictAgent", a.AgentIDRequest(), C.INVALID_ARGUMENT, "missing agent SPIFFE ID")
expect("NoSuchMethod", b"", C.UNIMPLEMENTED, "")
EOF
[ "$(wcli entry show -output json)" = "$BEFORE" ] || fail "the datastore changed"

step "unreachable socket"
bad "cannot connect to the server at $T/nowhere.sock: No such file or directory" \
  "$SERVER_BIN" entry count -socketPath "$T/nowhere.sock"
: >"$T/plain.file"
bad "cannot connect to the server at $T/plain.file: Connection refused" \
  "$SERVER_BIN" healthcheck -socketPath "$T/plain.file"
bad "-socketPath: must be an absolute path" "$SERVER_BIN" healthcheck -socketPath rel.sock
stop_server
bad "cannot connect to the server at $SERVER_SOCK" wcli healthcheck

step "a second server on the same admin socket is refused"
start_server srv
rc=0
"$SERVER_BIN" run -trustDomain example.org -dataDir "$T/other.data" -socketPath "$SERVER_SOCK" \
  -serverPort 0 >"$T/second.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "second server: exit $rc"
grep -q "Admin socket $SERVER_SOCK is in use by another server" "$T/second.log" || fail "in-use not named"
expect_ok "first server unaffected" wcli healthcheck
stop_server

pass
