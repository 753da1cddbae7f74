#!/bin/bash
# The data dir stays read-only until the node SVID in use is about to expire: the agent
# then switches to the renewed one it could not save (the server knows it), keeps being
# served, and saves it once the dir is writable again.
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org
# Renewal TTL/2 - 5 s after attestation; the switch comes 5 s before the old SVID's
# expiry, TTL s after attestation.
TTL=$((30 + 5 * (WARDEN_TIME_SCALE - 1)))

serial() { openssl x509 -in "$1/agent_svid.pem" -noout -serial; }

step "server with ${TTL} s node SVIDs, an agent, a read-only data dir"
start_server srv -defaultX509SVIDTTL "${TTL}s"
wcli bundle show >"$T/roots.pem"
TOK=$(wcli token generate | sed -n 's/^Token: //p')
start_agent a1 -joinToken "$TOK" -trustBundle "$T/roots.pem"
agent_attested
DATA=$AGENT_DATA
if ! chattr +i "$DATA" 2>/dev/null; then
  echo "SKIP: chattr +i is not possible here (file system or capabilities)"
  TEST_OK=1
  exit 0
fi
TEARDOWN_HOOKS+=("chattr -i '$DATA'")
AID=$(agent_id "$AGENT_LOG")
S1=$(serial "$DATA")
wcli entry create -spiffeID "$TDID/w1" -parentID "$AID" -selector unix:uid:0 >/dev/null
wait_for acli fetch x509 || fail "no SVID: $(acli fetch x509 2>&1)"

step "renewed but not saved, then the old one nears its expiry: the renewed one is used"
wait_for -t "$TTL" grep -q "Cannot save the renewed node SVID in $DATA" "$AGENT_LOG" ||
  fail "no renewal: $(tail -n 5 "$AGENT_LOG")"
wait_for -t "$TTL" grep -q "still cannot be saved in $DATA (Operation not permitted): using it unsaved" \
  "$AGENT_LOG" || fail "no switch before the expiry: $(tail -n 5 "$AGENT_LOG")"
assert_not_contains "$(cat "$AGENT_LOG")" "refused" "agent log"
assert_not_contains "$(cat "$SERVER_LOG")" "refused" "server log"
# Past the old SVID's notAfter: still connected, still served.
NA=$(date -d "$(openssl x509 -in "$DATA/agent_svid.pem" -noout -enddate | cut -d= -f2)" +%s)
past_old() { [ "$(date +%s)" -gt "$NA" ]; }
wait_for -t 15 past_old || fail "the clock did not pass $NA"
expect_ok "served after the old SVID expired" acli fetch x509
assert_contains "$OUT" "$TDID/w1"
kill -0 "$AGENT_PID" || fail "the agent exited"

step "writable again: the node SVID in use is saved, a restart uses it"
chattr -i "$DATA"
saved() { [ "$(serial "$DATA")" != "$S1" ]; }
wait_for saved || fail "not saved: $(tail -n 5 "$AGENT_LOG")"
stop_agent
start_agent a1
wait_for acli fetch x509 || fail "no SVID after the restart: $(tail -n 5 "$AGENT_LOG")"
assert_not_contains "$(cat "$AGENT_LOG")" "Attesting" "agent log after the restart"
stop_agent
stop_server
pass
