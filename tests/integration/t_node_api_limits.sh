#!/bin/bash
# Node API limits per client address (issue 11): a connection that never finishes its TLS
# handshake is closed after -nodeHandshakeTimeout; beyond -nodeMaxUnauthPerSource
# unauthenticated connections from one address a new one is closed at once; attestation
# attempts beyond -attestRatePerSource get RESOURCE_EXHAUSTED, and the agent retries
# until it attests. Every refusal is counted in warden_server_node_api_limited_total.
. "$(dirname "$0")/lib.sh"

cp "$WARDEN_SOURCE_DIR/tests/integration/py/tcp_flood.py" "$T/tcp_flood.py"

# limited LIMIT: refusals counted for it (0 before the first); limited_reaches LIMIT N.
limited() {
  local v
  v=$(metric "warden_server_node_api_limited_total{limit=\"$1\"}")
  echo "${v:-0}"
}
limited_reaches() { metric_at_least "warden_server_node_api_limited_total{limit=\"$1\"}" "$2"; }
# closed_ms FILE I: how long connection I stayed open (tcp_flood.py closes), or nothing.
closed_ms() { sed -n "s/^closed=$2 ms=//p" "$1"; }

step "server: handshake timeout 2 s, 3 unauthenticated connections per address, 1 attestation/s"
HP=$(free_port)
start_server srv -healthAddress "127.0.0.1:$HP" -nodeHandshakeTimeout 2s \
  -nodeMaxUnauthPerSource 3 -attestRatePerSource 1
grep -q "Node API limits: .* 3 unauthenticated per address, handshake timeout 2 s, 1 attestations/s" \
  "$SERVER_LOG" || fail "limits not logged: $(grep -m1 'Node API limits' "$SERVER_LOG")"
wcli bundle show >"$T/roots.pem"

step "a connection that never starts TLS is closed after the 2 s handshake timeout"
"$PY" "$T/tcp_flood.py" closes 127.0.0.1 "$SERVER_PORT" 1 "$(scaled 15)" >"$T/idle.out"
MS=$(closed_ms "$T/idle.out" 1)
[ -n "$MS" ] || fail "idle connection not closed: $(cat "$T/idle.out")"
echo "closed after $MS ms"
[ "$MS" -ge 1900 ] && [ "$MS" -le $((2000 + $(scaled 3) * 1000)) ] ||
  fail "closed after $MS ms instead of ~2 s"
wait_for limited_reaches handshake_timeout 1 || fail "handshake timeout not counted"

step "of 5 unauthenticated connections from one address the 4th and 5th are closed at once"
"$PY" "$T/tcp_flood.py" closes 127.0.0.1 "$SERVER_PORT" 5 "$(scaled 15)" >"$T/cap.out"
cat "$T/cap.out"
FIRST=$(sed -n 's/^closed=\([0-9]*\) .*/\1/p' "$T/cap.out" | head -n 2 | sort | tr '\n' ' ')
[ "$FIRST" = "4 5 " ] || fail "first closed: $FIRST"
for i in 4 5; do
  [ "$(closed_ms "$T/cap.out" $i)" -lt 1500 ] || fail "connection $i was not refused at once"
done
for i in 1 2 3; do
  MS=$(closed_ms "$T/cap.out" $i)
  [ -n "$MS" ] && [ "$MS" -ge 1900 ] || fail "connection $i: closed after '$MS' ms, not by the timeout"
done
[ "$(limited unauth_per_source)" -ge 2 ] || fail "refusals not counted: $(limited unauth_per_source)"

step "attestation attempts beyond 1/s from one address: RESOURCE_EXHAUSTED"
END=$(($(now_ms) + $(scaled 20) * 1000))
ROUND=0
while ! grep -qs "RESOURCE_EXHAUSTED" "$T"/att.*.err; do
  [ "$(now_ms)" -lt "$END" ] || fail "no RESOURCE_EXHAUSTED: $(cat "$T"/att.*.err | sort | uniq -c)"
  ROUND=$((ROUND + 1))
  ATT=()
  for i in 1 2 3; do
    "$NODE_BIN" attest-join -server "127.0.0.1:$SERVER_PORT" -trustBundle "$T/roots.pem" \
      -token "no-such-token-$ROUND-$i" -dir "$T/att.$ROUND.$i" 2>"$T/att.$ROUND.$i.err" &
    ATT+=($!)
  done
  for p in "${ATT[@]}"; do wait "$p" || true; done
done
grep -h "RESOURCE_EXHAUSTED" "$T"/att.*.err | head -n 1
grep -qh "status: RESOURCE_EXHAUSTED: too many attestation attempts from this address" \
  "$T"/att.*.err || fail "unexpected refusal text"
[ "$(limited attestation_rate)" -ge 1 ] || fail "rate refusals not counted"

step "an agent with a valid token attests regardless (it retries)"
TOK=$(wcli token generate | sed -n 's/^Token: //p')
start_agent a1 -joinToken "$TOK" -trustBundle "$T/roots.pem"
wait_for -t 30 grep -q "Node attested as" "$AGENT_LOG" ||
  fail "agent did not attest: $(tail -n 5 "$AGENT_LOG")"
pass
