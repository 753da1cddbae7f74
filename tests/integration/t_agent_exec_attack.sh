#!/bin/bash
# The exec-after-connect attack against the real agent: an entry names an allowed
# binary (unix:path) and uid 65534; an attacker running as uid 65534 connects, then
# makes /proc/<pid>/exe name the allowed binary while its own code sends
# FetchX509SVID over that connection (tests/tools/warden-attack.c): fork + exec with
# the socket left to a child, exec with the socket kept, the same after a flood of
# connections (so the agent gets to it late), and pid reuse. Every run of every
# variant must be refused, and the allowed binary itself must still get its SVID.
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org
RUNS=20
NOBODY=65534

step "server, agent (with metrics), an entry for the allowed binary as uid $NOBODY"
start_server srv
wcli bundle show >"$T/roots.pem"
TOK=$(wcli token generate | sed -n 's/^Token: //p')
HP=$(free_port)
start_agent a1 -joinToken "$TOK" -trustBundle "$T/roots.pem" -healthAddress "127.0.0.1:$HP"
wait_for grep -q "Node attested as" "$AGENT_LOG" || fail "agent did not attest"
AID=$(agent_id "$AGENT_LOG")
# The allowed binary: a Workload API client (the agent's own CLI), in a directory uid
# 65534 can read; the attacker is another program.
mkdir -p "$T/allowed"
cp "$AGENT_BIN" "$T/allowed/warden-agent"
cp "$WARDEN_BUILD_DIR/tests/tools/warden-attack" "$T/attacker"
chmod 755 "$T/allowed" "$T/allowed/warden-agent" "$T/attacker"
ALLOWED=$(realpath "$T/allowed/warden-agent")
wcli entry create -spiffeID "$TDID/allowed" -parentID "$AID" -selector "unix:path:$ALLOWED" \
  -selector "unix:uid:$NOBODY" >/dev/null

step "the allowed binary, run as uid $NOBODY, gets its SVID"
wait_for as_uid $NOBODY "$ALLOWED" api fetch x509 -socketPath "$AGENT_SOCK" ||
  fail "the allowed binary got no SVID: $(as_uid $NOBODY "$ALLOWED" api fetch x509 -socketPath "$AGENT_SOCK" 2>&1)"
expect_ok "legitimate fetch" as_uid $NOBODY "$ALLOWED" api fetch x509 -socketPath "$AGENT_SOCK"
assert_contains "$OUT" "SPIFFE ID:         $TDID/allowed"

step "every variant, $RUNS runs each: refused"
for mode in fork-exec exec-keep flood pid-reuse; do
  refused=0
  reused_not=0
  for i in $(seq 1 $RUNS); do
    rc=0
    out=$("$T/attacker" -s "$AGENT_SOCK" -u $NOBODY -m "$mode" \
      "$ALLOWED" api watch -socketPath "$AGENT_SOCK") || rc=$?
    case $rc in
      0) refused=$((refused + 1)) ;;
      1) fail "$mode run $i: the attack won: $out" ;;
      3) reused_not=$((reused_not + 1)) ;;
      *) fail "$mode run $i: attack setup failed (rc $rc): $out" ;;
    esac
    case "$out" in
      REFUSED*) ;;
      "") [ $rc = 3 ] || fail "$mode run $i: no result" ;;
      *) fail "$mode run $i: unexpected result: $out" ;;
    esac
  done
  note=
  [ "$reused_not" = 0 ] || note=" (the pid could not be reused in $reused_not runs)"
  echo "$mode: $refused of $RUNS refused$note"
  [ $((refused + reused_not)) = $RUNS ] || fail "$mode: $refused refused of $RUNS"
done
# pid reuse through ns_last_pid works as root here: most runs must have exercised it.
[ "$reused_not" -le $((RUNS / 2)) ] || fail "pid-reuse: the pid was reused in too few runs"

step "the allowed binary still gets its SVID; metrics show connections without the proof"
expect_ok "legitimate fetch after the attacks" as_uid $NOBODY "$ALLOWED" api fetch x509 \
  -socketPath "$AGENT_SOCK"
assert_contains "$OUT" "SPIFFE ID:         $TDID/allowed"
OUT=$("$PY" -c 'import sys, urllib.request
o = urllib.request.build_opener(urllib.request.ProxyHandler({}))
print(o.open("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode())' "$HP")
echo "$OUT" | grep '^warden_workload_attestations_total'
assert_contains "$OUT" 'warden_workload_attestations_total{result="ok"}'
pass
