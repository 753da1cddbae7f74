#!/usr/bin/env bash
# warden-server: the list verbs page. 2,500 entries (more than two pages of the largest
# page size) reach `entry show` each exactly once, in text and JSON, with every kind of
# filter; any -pageSize prints the same bytes; `agent list` pages too; the admin API
# refuses page tokens it did not make and caps page sizes; a client that sends no page
# size still gets every entry in one answer.
. "$(dirname "$0")/lib.sh"

TD=example.org
P1=spiffe://example.org/warden/agent/join_token/p1
P2=spiffe://example.org/warden/agent/join_token/p2
N=2500
NODE="$PY $WARDEN_SOURCE_DIR/tests/integration/server_node_client.py"

start_server srv

step "$N entries, created with three -data batches"
# Entry i: parent p1 when odd, else p2; unix:uid:i, and unix:gid:7 when i % 3 == 0; hint
# "ten" when i % 10 == 0.
"$PY" - "$T" "$P1" "$P2" "$N" <<'EOF'
import json, sys
t, p1, p2, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
for b in range(0, n, 1000):
    ents = []
    for i in range(b, min(n, b + 1000)):
        e = {"spiffe_id": "spiffe://example.org/w/%d" % i, "parent_id": p1 if i % 2 else p2,
             "selectors": ["unix:uid:%d" % i] + (["unix:gid:7"] if i % 3 == 0 else [])}
        if i % 10 == 0:
            e["hint"] = "ten"
        ents.append(e)
    json.dump({"entries": ents}, open("%s/batch%d.json" % (t, b // 1000), "w"))
EOF
for b in 0 1 2; do
  wcli entry create -data "$T/batch$b.json" -output json >/dev/null || fail "batch $b"
done
[ "$(wcli entry count)" = "$N registration entries" ] || fail "entry count: $(wcli entry count)"

# check FILE EXPR: FILE (entry show -output json) holds, in ID order and each once, exactly
# the entries i for which EXPR (Python, over i) is true.
check() {
  "$PY" - "$1" "$2" "$N" <<'EOF' || fail "$1: not the entries where $2"
import json, sys
path, expr, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
doc = json.load(open(path))
assert list(doc) == ["entries"], list(doc)
ids = [e["id"] for e in doc["entries"]]
assert ids == sorted(ids), "not in ID order"
assert len(set(ids)) == len(ids), "an entry came twice"
got = sorted(int(e["spiffe_id"].rsplit("/", 1)[1]) for e in doc["entries"])
want = [i for i in range(n) if eval(expr)]
assert got == want, (len(got), len(want))
EOF
}

step "entry show: every entry exactly once, text and JSON, in pages"
wcli entry show >"$T/all.txt" || fail "entry show"
[ "$(head -n 1 "$T/all.txt")" = "Found $N entries" ] || fail "header: $(head -n 1 "$T/all.txt")"
[ "$(grep -c '^Entry ID' "$T/all.txt")" = $N ] || fail "text: not $N entries"
[ "$(grep '^Entry ID' "$T/all.txt" | sort -u | wc -l)" = $N ] || fail "text: an entry twice"
wcli entry show -output json >"$T/all.json" || fail "entry show -output json"
check "$T/all.json" True
# The largest page size (3 pages) and a small one (357 pages) print the same bytes.
wcli entry show -pageSize 1000 >"$T/all.1000.txt" || fail "-pageSize 1000"
cmp -s "$T/all.txt" "$T/all.1000.txt" || fail "text differs with -pageSize 1000"
wcli entry show -pageSize 7 -output json >"$T/all.7.json" || fail "-pageSize 7"
cmp -s "$T/all.json" "$T/all.7.json" || fail "JSON differs with -pageSize 7"

step "filters still apply, page after page"
# show_check NAME EXPR FLAGS...: JSON with pages of 7 and 1000, text with pages of 7 and
# 1000; all agree, hold the right entries, and the text header counts them.
show_check() {
  local name=$1 expr=$2 want
  shift 2
  wcli entry show -pageSize 7 -output json "$@" >"$T/$name.json" || fail "$name: show"
  check "$T/$name.json" "$expr"
  wcli entry show -pageSize 1000 -output json "$@" >"$T/$name.1000.json" || fail "$name: show"
  cmp -s "$T/$name.json" "$T/$name.1000.json" || fail "$name: JSON differs by page size"
  wcli entry show -pageSize 7 "$@" >"$T/$name.txt" || fail "$name: show text"
  wcli entry show -pageSize 1000 "$@" >"$T/$name.1000.txt" || fail "$name: show text"
  cmp -s "$T/$name.txt" "$T/$name.1000.txt" || fail "$name: text differs by page size"
  want=$("$PY" -c "print(sum(1 for i in range($N) if $expr))")
  [ "$(grep -c '^Entry ID' "$T/$name.txt")" = "$want" ] || fail "$name: text count"
  assert_contains "$(head -n 1 "$T/$name.txt")" "Found $want entr"
  [ "$(wcli entry count "$@")" = "$want registration $([ "$want" = 1 ] && echo entry || echo entries)" ] ||
    fail "$name: entry count $(wcli entry count "$@")"
}
show_check parent "i % 2 == 1" -parentID "$P1"
show_check gid "i % 3 == 0" -selector unix:gid:7
show_check parent_gid "i % 2 == 1 and i % 3 == 0" -parentID "$P1" -selector unix:gid:7
show_check hint "i % 10 == 0" -hint ten
show_check exact "i == 5" -selector unix:uid:5 -matchSelectorsOn exact
show_check any "i in (1, 2) or i % 3 == 0" -selector unix:uid:1 -selector unix:uid:2 \
  -selector unix:gid:7 -matchSelectorsOn any
show_check one "i == 42" -spiffeID spiffe://example.org/w/42
show_check none "False" -parentID spiffe://example.org/nobody
[ "$(cat "$T/none.txt")" = "Found 0 entries" ] || fail "no entries: $(cat "$T/none.txt")"
[ "$(cat "$T/none.json")" = "$(printf '{\n  "entries": []\n}')" ] || fail "no entries: JSON"

step "-pageSize is checked"
expect_fail "-pageSize 0" wcli entry show -pageSize 0
assert_contains "$OUT" "Error: -pageSize: must be between 1 and 1000"
expect_fail "-pageSize 1001" wcli agent list -pageSize 1001
assert_contains "$OUT" "Error: -pageSize: must be between 1 and 1000"

step "agent list pages too"
wcli bundle show >"$T/bundle.pem"
for i in 1 2 3; do
  tok=$(wcli token generate | sed -n 's/^Token: //p')
  mkdir -p "$T/a$i"
  $NODE attest "127.0.0.1:$SERVER_PORT" "$T/bundle.pem" "$tok" "$T/a$i" >/dev/null ||
    fail "attest agent $i"
done
wcli agent list >"$T/agents.txt" || fail "agent list"
[ "$(head -n 1 "$T/agents.txt")" = "Found 3 attested agents" ] || fail "agents: $(head -n 1 "$T/agents.txt")"
wcli agent list -pageSize 1 >"$T/agents.1.txt" || fail "agent list -pageSize 1"
cmp -s "$T/agents.txt" "$T/agents.1.txt" || fail "agent list differs with -pageSize 1"
wcli agent list -output json >"$T/agents.json" || fail "agent list json"
wcli agent list -pageSize 2 -output json >"$T/agents.2.json" || fail "agent list json"
cmp -s "$T/agents.json" "$T/agents.2.json" || fail "agent list JSON differs with -pageSize 2"
[ "$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["agents"]))' "$T/agents.json")" = 3 ] ||
  fail "agent list JSON: not 3 agents"

step "the admin API: tokens only from the server, capped page sizes, unpaged answers"
mkdir "$T/pyproto"
"$PY" - "$SERVER_SOCK" "$WARDEN_SOURCE_DIR/proto" "$T/pyproto" "$N" <<'EOF' || fail "raw admin API"
import base64, subprocess, sys
import grpc
sock, protodir, out, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
subprocess.run(["protoc", "-I", protodir, "--python_out=" + out, "warden/admin/v1/admin.proto",
                "warden/types/v1/types.proto"], check=True)
sys.path.insert(0, out)
from warden.admin.v1 import admin_pb2 as a

ch = grpc.insecure_channel("unix:" + sock)
C = grpc.StatusCode


def call(method, req, resp):
    data = ch.unary_unary("/warden.admin.v1.Admin/" + method)(req.SerializeToString(), timeout=30)
    return resp.FromString(data)


def refused(method, req, text):
    try:
        ch.unary_unary("/warden.admin.v1.Admin/" + method)(req.SerializeToString(), timeout=30)
    except grpc.RpcError as e:
        assert e.code() == C.INVALID_ARGUMENT and text in e.details(), (e.code(), e.details())
        return
    raise AssertionError(method + " accepted " + str(req))


# An old client (no page_size): everything in one answer, no token.
r = call("ListEntries", a.ListEntriesRequest(), a.ListEntriesResponse)
assert len(r.entries) == n and r.next_page_token == "", (len(r.entries), r.next_page_token)
# Pages of at most 1000 (asked for more), tokens opaque, the last page without one.
sizes, token, ids = [], "", []
while True:
    r = call("ListEntries", a.ListEntriesRequest(page_size=5000, page_token=token),
             a.ListEntriesResponse)
    sizes.append(len(r.entries))
    ids += [e.id for e in r.entries]
    if not r.next_page_token:
        break
    assert r.entries[-1].id not in r.next_page_token, "token is the plain ID"
    token = r.next_page_token
assert sizes == [1000, 1000, 500], sizes
assert ids == sorted(set(ids)) and len(ids) == n
# A filtered page of 3 holds 3 and continues where it stopped.
r = call("ListEntries", a.ListEntriesRequest(by_hint="ten", page_size=3), a.ListEntriesResponse)
assert len(r.entries) == 3 and r.next_page_token
r2 = call("ListEntries", a.ListEntriesRequest(by_hint="ten", page_size=3,
                                              page_token=r.next_page_token), a.ListEntriesResponse)
assert len(r2.entries) == 3 and r2.entries[0].id > r.entries[-1].id
# Tokens the server did not make.
agents = call("ListAgents", a.ListAgentsRequest(page_size=1), a.ListAgentsResponse)
assert len(agents.agents) == 1 and agents.next_page_token
for bad in ("bogus!", "AAAA", base64.urlsafe_b64encode(b"e:no such id!").decode().rstrip("="),
            agents.next_page_token, "x" * 5000):
    refused("ListEntries", a.ListEntriesRequest(page_size=10, page_token=bad), "invalid page_token")
refused("ListAgents", a.ListAgentsRequest(page_token=r.next_page_token), "invalid page_token")
refused("ListEntries", a.ListEntriesRequest(page_size=-1), "page_size must not be negative")
refused("ListAgents", a.ListAgentsRequest(page_size=-5), "page_size must not be negative")
# Count ignores paging fields.
c = call("CountEntries", a.CountEntriesRequest(filter=a.ListEntriesRequest(page_size=1)),
         a.CountEntriesResponse)
assert c.count == n, c.count
EOF

stop_server
pass
