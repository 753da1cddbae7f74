#!/bin/bash
# One uid must not starve the others (the real agent, floods from uid 65534 with
# py/flood.py): 2000 connections and 2000 streams while root still fetches in < 1 s,
# the per-uid caps counted in metrics, the agent's memory back to its baseline once the
# floods are gone, idle connections closed; root's cached JWT-SVID surviving another
# uid's flood of 1100 audiences with the server stopped, the per-uid rate of mints; the
# audience rules (length, NUL, UTF-8) answered with INVALID_ARGUMENT by the agent; and
# JWT-SVIDs valid only while now < exp.
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org
NOBODY=65534
FLOOD="$T/flood.py"
PYC="$WARDEN_SOURCE_DIR/tests/integration/py/workload_client.py"
cp "$WARDEN_SOURCE_DIR/tests/integration/py/flood.py" "$FLOOD"
chmod 755 "$FLOOD"

limited() { metric "warden_workload_api_limited_total{limit=\"$1\"}"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$AGENT_PID/status"; }
# root_fetch_fast WHAT: root's FetchX509SVID (a whole CLI run) succeeds within 1 s
# (times WARDEN_TIME_SCALE: sanitizer builds run several times slower).
root_fetch_fast() {
  local t0 t1
  t0=$(now_ms)
  expect_ok "root fetch ($1)" acli fetch x509 -timeout 5s
  t1=$(now_ms)
  assert_contains "$OUT" "$TDID/w/root"
  echo "root fetch during $1: $((t1 - t0)) ms"
  [ $((t1 - t0)) -lt $(($(scaled 1) * 1000)) ] || fail "root waited $((t1 - t0)) ms during $1"
}
# bg_nobody OUT ARGS...: flood.py ARGS as uid 65534 in the background, its output in
# OUT; sets BG to its pid (setpriv execs python: the pid to kill is python's own).
bg_nobody() {
  local out=$1
  shift
  setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups -- "$PY" "$FLOOD" "$@" >"$out" 2>&1 &
  BG=$!
  PIDS+=("$BG")
}
jwt_of() { "$PY" -c 'import json,sys; print(json.load(sys.stdin)["svids"][0]["svid"])'; }

step "server, agent (idle timeout 3 s, no mint rate limit), entries for root and uid $NOBODY"
start_server srv
SP=$SERVER_PORT
wcli bundle show >"$T/roots.pem"
TOK=$(wcli token generate | sed -n 's/^Token: //p')
HP=$(free_port)
start_agent a1 -joinToken "$TOK" -trustBundle "$T/roots.pem" -healthAddress "127.0.0.1:$HP" \
  -connectionIdleTimeout 3s -jwtMintRatePerUID 0
wait_for grep -q "Node attested as" "$AGENT_LOG" || fail "agent did not attest"
AID=$(agent_id "$AGENT_LOG")
wcli entry create -spiffeID "$TDID/w/root" -parentID "$AID" -selector unix:uid:0 >/dev/null
wcli entry create -spiffeID "$TDID/w/nobody" -parentID "$AID" -selector "unix:uid:$NOBODY" \
  >/dev/null
wait_for acli fetch x509 || fail "root got no SVID"
for i in 1 2 3 4 5; do acli fetch x509 >/dev/null; done
RSS0=$(rss_kb)
echo "agent RSS at rest: $RSS0 KiB"

step "2000 connections from uid $NOBODY: refused beyond its cap, root served at once"
bg_nobody "$T/conns.out" conns "$AGENT_SOCK" 2000
CF=$BG
wait_for grep -q "connected=" "$T/conns.out" || fail "conns flood: $(cat "$T/conns.out")"
root_fetch_fast "the connection flood"
[ "$(limited connections_per_uid)" -ge 1000 ] ||
  fail "connections over the per-uid cap not counted: $(limited connections_per_uid)"
kill "$CF"
wait "$CF" 2>/dev/null || true

step "2000 streams from uid $NOBODY: 256 open, the rest RESOURCE_EXHAUSTED; root served"
bg_nobody "$T/streams.out" streams "$AGENT_SOCK" 2000
SF=$BG
for i in $(seq 1 600); do grep -q "open=" "$T/streams.out" && break; sleep 0.1; done
OUT=$(cat "$T/streams.out")
echo "$OUT"
assert_contains "$OUT" "open=256 exhausted=1744 other=0" "the stream flood"
root_fetch_fast "2000 streams"
[ "$(limited calls_per_uid)" -ge 1744 ] || fail "calls over the cap not counted"
[ "$(metric 'warden_workload_api_open_streams{method="FetchX509SVID"}')" = 256 ] ||
  fail "open streams gauge: $(metric 'warden_workload_api_open_streams{method="FetchX509SVID"}')"
echo "agent RSS with the floods: $(rss_kb) KiB"
kill "$SF"
wait "$SF" 2>/dev/null || true

step "the floods gone: no open streams, memory back to its baseline"
wait_for metric_has 'warden_workload_api_open_streams{method="FetchX509SVID"}' 0 ||
  fail "streams still open"
sleep 1
RSS1=$(rss_kb)
echo "agent RSS after the floods: $RSS1 KiB (at rest: $RSS0 KiB)"
# AddressSanitizer keeps freed memory in its quarantine and ThreadSanitizer keeps shadow
# memory and histories: only a normal build can tell.
# (ldd's whole output first: with pipefail, grep -q closing the pipe early can fail ldd.)
if [[ "$(ldd "$AGENT_BIN")" =~ lib(asan|tsan) ]]; then
  echo "(sanitizer build: the RSS comparison is skipped)"
else
  [ "$RSS1" -le $((RSS0 + 1536)) ] || fail "RSS $RSS1 KiB is more than 1.5 MiB over $RSS0 KiB"
fi

step "idle connections are closed after -connectionIdleTimeout"
BEFORE=$(limited idle_timeout)
bg_nobody "$T/idle.out" conns "$AGENT_SOCK" 5
IF=$BG
wait_for grep -q "connected=5" "$T/idle.out" || fail "idle conns: $(cat "$T/idle.out")"
for i in $(seq 1 100); do
  [ "$(limited idle_timeout)" -ge $((BEFORE + 5)) ] && break
  sleep 0.1
done
[ "$(limited idle_timeout)" -ge $((BEFORE + 5)) ] || fail "idle connections not closed"
kill "$IF"
wait "$IF" 2>/dev/null || true

step "root's cached JWT-SVID survives 1100 audiences of uid $NOBODY, then the server stops"
expect_ok "root jwt" acli fetch jwt -audience root-aud -output json
ROOT_JWT=$(echo "$OUT" | jwt_of)
OUT=$(as_uid $NOBODY "$PY" "$FLOOD" audiences "$AGENT_SOCK" 1100)
echo "audience flood: $OUT"
assert_contains "$OUT" "ok=1100 exhausted=0 other=0"
[ "$(metric warden_agent_jwt_cache_entries)" = 1000 ] ||
  fail "JWT cache: $(metric warden_agent_jwt_cache_entries) entries"
stop_server
expect_ok "root jwt from the cache" acli fetch jwt -audience root-aud -output json
[ "$(echo "$OUT" | jwt_of)" = "$ROOT_JWT" ] || fail "root's cached JWT-SVID was evicted"
start_server srv -serverPort "$SP"

step "the per-uid rate of new JWT-SVIDs (default 10/s, bursts of 50)"
stop_agent
start_agent a1 -healthAddress "127.0.0.1:$HP"
wait_for acli fetch x509 || fail "agent not serving after its restart"
OUT=$(as_uid $NOBODY "$PY" "$FLOOD" audiences "$AGENT_SOCK" 150)
echo "audience flood at the default rate: $OUT"
OK=$(echo "$OUT" | sed -n 's/^ok=\([0-9]*\) .*/\1/p')
EX=$(echo "$OUT" | sed -n 's/.* exhausted=\([0-9]*\) .*/\1/p')
[ "$OK" -ge 50 ] && [ "$EX" -ge 1 ] && [ $((OK + EX)) = 150 ] || fail "rate limit: $OUT"
[ "$(limited jwt_mint_rate)" = "$EX" ] || fail "jwt_mint_rate refusals: $(limited jwt_mint_rate)"
expect_ok "root still mints" acli fetch jwt -audience another-root-aud
grep -q "Workload API call refused method=FetchJWTSVID pid=[0-9]* uid=$NOBODY status=RESOURCE_EXHAUSTED" \
  "$AGENT_LOG" || fail "rate refusal not logged"

step "audience rules on the agent: INVALID_ARGUMENT"
A256=$(printf 'a%.0s' $(seq 1 256))
A257="${A256}a"
hexof() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
OUT=$("$PY" "$FLOOD" jwt "$AGENT_SOCK" "$(hexof "$A256")")
[ "$OUT" = OK ] || fail "256-byte audience: $OUT"
OUT=$("$PY" "$FLOOD" jwt "$AGENT_SOCK" "$(hexof "$A257")")
[ "$OUT" = "INVALID_ARGUMENT audience too long" ] || fail "257-byte audience: $OUT"
OUT=$("$PY" "$FLOOD" jwt "$AGENT_SOCK" 610062)
[ "$OUT" = "INVALID_ARGUMENT strings must be UTF-8 without NUL" ] || fail "NUL: $OUT"
OUT=$("$PY" "$FLOOD" jwt "$AGENT_SOCK" 61ff62)
[ "$OUT" = "INVALID_ARGUMENT strings must be UTF-8 without NUL" ] || fail "bad UTF-8: $OUT"

step "JWT-SVIDs are valid only while now < exp"
STATE="$T/srv.data/ca/state.json"
KID=$("$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print([j for j in s["jwt"] if j["role"]=="current"][0]["kid"])' "$STATE")
KEYF="$T/srv.data/ca/$("$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print([j for j in s["jwt"] if j["role"]=="current"][0]["key"])' "$STATE")"
mint() { "$PY" "$PYC" mint --key "$KEYF" --kid="$KID" --sub "$TDID/w/root" --exp-offset="$1"; }
SHORT=$(mint 2)
expect_ok "valid before exp" acli validate jwt -audience interop -svid "$SHORT"
sleep 3
expect_fail "exp + 1 s" acli validate jwt -audience interop -svid "$SHORT"
assert_contains "$OUT" "INVALID_ARGUMENT: unable to validate JWT-SVID"
expect_fail "exp - 1 s ago" acli validate jwt -audience interop -svid "$(mint -1)"
stop_agent
start_agent a1 -jwtExpiryLeeway 30s
wait_for acli fetch x509 || fail "agent not serving after its restart"
expect_ok "opt-in leeway after exp" acli validate jwt -audience interop -svid "$(mint -1)"
expect_fail "beyond the leeway" acli validate jwt -audience interop -svid "$(mint -31)"
pass
