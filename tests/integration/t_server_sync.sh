#!/bin/bash
# Incremental Sync (docs/sync.md) on the real server, the test node client (which
# applies messages as an agent does and checks base_sequence) and a real agent:
# a first snapshot then deltas with only what changed; agents a change does not affect
# get nothing; a bulk create of 1,000 entries reaches the agent as a few merged deltas;
# updates and deletions; a client that reconnects in the middle of a burst ends up with
# exactly the final set; a snapshot larger than one message comes in parts; a real
# agent keeps its SVIDs across a server restart and still gets changes after it.
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org

# bulk FILE PARENT FROM TO [HINTLEN]: a -data file of entries w/FROM..w/(TO-1) under PARENT.
bulk() {
  "$PY" - "$@" <<'EOF'
import json, sys
path, parent, a, b = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
hint = "h" * int(sys.argv[5]) if len(sys.argv) > 5 else ""
ents = [{"spiffe_id": "spiffe://example.org/bulk/%d" % i, "parent_id": parent,
         "selectors": ["unix:uid:%d" % (10000 + i)], "hint": hint} for i in range(a, b)]
json.dump({"entries": ents}, open(path, "w"))
EOF
}

# changes FILE: the change lines ("---") the sync client printed so far.
changes() { grep -c '^---' "$1" 2>/dev/null || true; }
has_changes() { [ "$(changes "$1")" -ge "$2" ]; }
# last_state FILE: the entries held after the last change printed, sorted.
last_state() {
  awk '/^---/{delete s; n=0; for (i in cur) s[i]=cur[i]; k=length(cur); delete cur; next}
       {cur[$0]=1} END{for (i in s) print i}' "$1" | sort
}
last_line() { grep '^---' "$1" | tail -n 1; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

HP=$(free_port)
start_server srv -logLevel debug -healthAddress "127.0.0.1:$HP"
wcli bundle show >"$T/roots.pem"

step "two test nodes, A and B"
for n in a b; do
  tok=$(wcli token generate | sed -n 's/^Token: //p')
  node attest-join -trustBundle "$T/roots.pem" -token "$tok" -dir "$T/n-$n" >"$T/$n.id" ||
    fail "attest $n"
done
A=$(cat "$T/a.id")
B=$(cat "$T/b.id")
EA1=$(new_entry "$TDID/a1" "$A" unix:uid:1001)
new_entry "$TDID/b1" "$B" unix:uid:1002 >/dev/null

node sync -dir "$T/n-a" -timeout "$(scaled 120)" >"$T/a.out" 2>"$T/a.err" &
SA=$!
PIDS+=("$SA")
node sync -dir "$T/n-b" -timeout "$(scaled 120)" >"$T/b.out" 2>"$T/b.err" &
SB=$!
PIDS+=("$SB")
wait_for has_changes "$T/a.out" 1 || fail "A: no snapshot"
wait_for has_changes "$T/b.out" 1 || fail "B: no snapshot"
L=$(last_line "$T/a.out")
[ "$(field kind "$L")" = snapshot ] && [ "$(field entries "$L")" = 1 ] || fail "A's snapshot: $L"

step "a new entry for A: one delta with just that entry; B gets nothing"
new_entry "$TDID/a2" "$A" unix:uid:1003 >/dev/null
wait_for has_changes "$T/a.out" 2 || fail "A: no delta"
L=$(last_line "$T/a.out")
[ "$(field kind "$L")" = delta ] && [ "$(field upserts "$L")" = 1 ] &&
  [ "$(field entries "$L")" = 2 ] || fail "A's delta: $L"
[ "$(last_state "$T/a.out")" = "$(printf '%s\n' "$TDID/a1" "$TDID/a2")" ] || fail "A's set"

step "an update sends the entry again, a deletion sends its ID"
wcli entry update -entryID "$EA1" -spiffeID "$TDID/a1-renamed" -parentID "$A" \
  -selector unix:uid:1001 >/dev/null || fail "update"
wait_for has_changes "$T/a.out" 3 || fail "A: no delta for the update"
L=$(last_line "$T/a.out")
[ "$(field upserts "$L")" = 1 ] && [ "$(field deleted "$L")" = 0 ] || fail "update delta: $L"
wcli entry delete -entryID "$EA1" >/dev/null || fail "delete"
wait_for has_changes "$T/a.out" 4 || fail "A: no delta for the deletion"
L=$(last_line "$T/a.out")
[ "$(field upserts "$L")" = 0 ] && [ "$(field deleted "$L")" = 1 ] || fail "delete delta: $L"
[ "$(last_state "$T/a.out")" = "$TDID/a2" ] || fail "A's set after delete"

step "a bulk create of 1,000 entries for A: a few merged deltas, all of them held"
bulk "$T/bulk1.json" "$A" 0 1000
before=$(changes "$T/a.out")
wcli entry create -data "$T/bulk1.json" >/dev/null || fail "bulk create"
wait_for grep -q "entries=1001 " "$T/a.out" || fail "A did not get all 1,000: $(last_line "$T/a.out")"
sleep 0.5
n=$(($(changes "$T/a.out") - before))
echo "bulk create reached A as $n change(s)"
[ "$n" -le 3 ] || fail "1,000 entries came as $n deltas, not merged"
[ "$(last_state "$T/a.out" | wc -l)" = 1001 ] || fail "A holds $(last_state "$T/a.out" | wc -l)"
[ "$(changes "$T/b.out")" = 1 ] || fail "B got messages for A's changes: $(cat "$T/b.out")"

step "a client that reconnects in the middle of a burst ends with exactly the final set"
# 1,000 more entries in 20 admin calls made one after another; the client drops its
# stream and opens a new one while they are being made.
for k in $(seq 0 19); do bulk "$T/burst$k.json" "$A" $((1000 + k * 50)) $((1050 + k * 50)); done
(for k in $(seq 0 19); do wcli entry create -data "$T/burst$k.json" >/dev/null || exit 1; done) &
BURST=$!
wait_for grep -q "entries=11[0-9][0-9] " "$T/a.out" || fail "the burst did not start reaching A"
kill "$SA"
wait "$SA" 2>/dev/null || true
node sync -dir "$T/n-a" -timeout "$(scaled 120)" >"$T/a2.out" 2>"$T/a2.err" &
SA=$!
PIDS+=("$SA")
wait "$BURST" || fail "burst creates"
wait_for grep -q "entries=2001 " "$T/a2.out" || fail "after reconnect: $(last_line "$T/a2.out")"
sleep 0.5
[ "$(last_state "$T/a2.out" | wc -l)" = 2001 ] || fail "reconnected client holds the wrong set"
[ "$(last_state "$T/a2.out" | sort -u | wc -l)" = 2001 ] || fail "an entry twice"
grep -q "^gap" "$T/a2.err" && fail "a gap: $(cat "$T/a2.err")"
[ "$(field kind "$(grep '^---' "$T/a2.out" | head -n 1)")" = snapshot ] || fail "no snapshot first"

step "a snapshot larger than one message comes in parts"
# 2,001 entries with ~1 KiB hints are well over the 1 MiB of one message.
bulk "$T/big.json" "$B" 0 1000 1000
sed -i 's#/bulk/#/big/#g' "$T/big.json"
wcli entry create -data "$T/big.json" >/dev/null || fail "big create"
wait_for grep -q "entries=1001 " "$T/b.out" || fail "B: $(last_line "$T/b.out")"
node sync -dir "$T/n-b" -count 1 -timeout "$(scaled 30)" >"$T/b2.out" 2>"$T/b2.err" ||
  fail "B again: $(cat "$T/b2.err")"
[ "$(last_state "$T/b2.out" | wc -l)" = 1001 ] || fail "B's parts: $(last_line "$T/b2.out")"
metric_at_least 'warden_server_sync_messages_total{kind="delta"}' 5 || fail "delta metric"

step "a real agent: SVIDs survive a server restart, changes still arrive after it"
kill "$SA" "$SB"
wait "$SA" "$SB" 2>/dev/null || true
start_agent ag -joinToken "$(wcli token generate | sed -n 's/^Token: //p')" -trustBundle "$T/roots.pem"
agent_attested
AG=$(agent_id "$AGENT_LOG")
new_entry "$TDID/real1" "$AG" unix:uid:0 >/dev/null
wait_for acli fetch x509 || fail "agent: no SVID for real1"
serial() { openssl x509 -in "$1/svid.0.pem" -noout -serial; }
acli fetch x509 -write "$T/before" >/dev/null || fail "fetch before"
stop_server
start_server srv -logLevel debug -serverPort "$SERVER_PORT"
wait_for grep -q "Sync stream opened agent_id=$AG" "$SERVER_LOG" || fail "agent did not reconnect"
new_entry "$TDID/real2" "$AG" unix:uid:0 >/dev/null
has_two() { acli fetch x509 2>/dev/null | grep -q "$TDID/real2"; }
wait_for has_two || fail "agent: no SVID for an entry made after the restart"
acli fetch x509 -write "$T/after" >/dev/null || fail "fetch after"
[ -n "$(serial "$T/before")" ] || fail "no serial"
# svid.0 is real1 or real2 by entry ID order: find real1's in both.
for d in before after; do
  for f in "$T/$d"/svid.*.pem; do
    openssl x509 -in "$f" -noout -ext subjectAltName | grep -q "$TDID/real1$" &&
      openssl x509 -in "$f" -noout -serial >"$T/$d.serial"
  done
done
[ -s "$T/before.serial" ] && cmp -s "$T/before.serial" "$T/after.serial" ||
  fail "real1's SVID was signed again after the restart"
stop_agent
stop_server
pass
