#!/bin/bash
# -maxEntries: the real agent keeps at most that many entries (each with a signed
# X.509-SVID), ignores the rest with a warning and counts them in
# warden_agent_entries_over_cap_total; a value out of 1..1000000 stops the start with
# one clear line.
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org

step "-maxEntries out of bounds: refused at start"
expect_fail "maxEntries 0" "$AGENT_BIN" run -trustDomain example.org -maxEntries 0 \
  -dataDir "$T/bad.data" -socketPath "$T/bad.sock"
assert_contains "$OUT" "-maxEntries: must be 1..1000000, got 0"
expect_fail "maxEntries 1000001" "$AGENT_BIN" run -trustDomain example.org \
  -maxEntries 1000001 -dataDir "$T/bad.data" -socketPath "$T/bad.sock"
assert_contains "$OUT" "-maxEntries: must be 1..1000000, got 1000001"

step "server, agent with -maxEntries 3, five entries for it"
start_server srv
wcli bundle show >"$T/roots.pem"
TOK=$(wcli token generate | sed -n 's/^Token: //p')
HP=$(free_port)
start_agent a1 -joinToken "$TOK" -trustBundle "$T/roots.pem" -healthAddress "127.0.0.1:$HP" \
  -maxEntries 3
agent_attested
AID=$(agent_id "$AGENT_LOG")
"$PY" - "$T/five.json" "$AID" <<'PYEOF'
import json, sys
json.dump({"entries": [{"spiffe_id": "spiffe://example.org/w/%d" % i, "parent_id": sys.argv[2],
                        "selectors": ["unix:uid:%d" % (5000 + i)]} for i in range(5)]},
          open(sys.argv[1], "w"))
PYEOF
wcli entry create -data "$T/five.json" -output json >"$T/created.json" 2>&1 ||
  fail "entry create: $(cat "$T/created.json")"

step "three SVIDs cached, two entries over the cap counted and logged"
metric_is warden_agent_svid_cache_entries 3
wait_for metric_at_least warden_agent_entries_over_cap_total 2 ||
  fail "over-cap entries not counted: '$(metric warden_agent_entries_over_cap_total)'"
wait_for grep -q "More than 3 entries (-maxEntries)" "$AGENT_LOG" || fail "no warning logged"
sleep 1
[ "$(metric warden_agent_svid_cache_entries)" = 3 ] ||
  fail "cache grew past the cap: $(metric warden_agent_svid_cache_entries)"

stop_agent
pass
