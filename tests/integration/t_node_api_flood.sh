#!/bin/bash
# The node API survives a TCP connection flood (issue 11). A server started under
# `prlimit --nofile=1024:1024` takes 1,200 raw TCP connections that never start TLS:
# its relay caps the connections to what 1,024 descriptors allow, closes the oldest
# unauthenticated ones for newcomers, and gRPC never sees EMFILE, so the listener
# lives on. The agent attested before the flood keeps its sync stream and gets a new
# entry pushed after it; once the flood ends a fresh agent attests with a join token.
. "$(dirname "$0")/lib.sh"

FLOOD=1200
TDID=spiffe://example.org
REAL_SERVER_BIN=$SERVER_BIN
cp "$WARDEN_SOURCE_DIR/tests/integration/py/tcp_flood.py" "$T/tcp_flood.py"
printf '#!/bin/sh\nexec prlimit --nofile=1024:1024 "%s" "$@"\n' "$REAL_SERVER_BIN" \
  >"$T/server-1024"
chmod 755 "$T/server-1024"

# limited LIMIT: refusals counted for it (0 before the first); limited_reaches LIMIT N.
limited() {
  local v
  v=$(metric "warden_server_node_api_limited_total{limit=\"$1\"}")
  echo "${v:-0}"
}
limited_reaches() { metric_at_least "warden_server_node_api_limited_total{limit=\"$1\"}" "$2"; }
fds() { ls "/proc/$SERVER_PID/fd" | wc -l; }

step "a server under prlimit --nofile=1024:1024, no per-source cap"
HP=$(free_port)
SERVER_BIN="$T/server-1024"
start_server srv -healthAddress "127.0.0.1:$HP" -nodeMaxUnauthPerSource 0 -logLevel debug
SERVER_BIN=$REAL_SERVER_BIN
[ "$(prlimit --pid "$SERVER_PID" --nofile --output SOFT --noheadings | tr -d ' ')" = 1024 ] ||
  fail "the server does not run with 1024 open files"
MAXC=$(sed -n 's/.*Node API limits: \([0-9]*\) connections (open file limit 1024).*/\1/p' \
  "$SERVER_LOG")
[ -n "$MAXC" ] && [ "$MAXC" -lt 340 ] || fail "connection cap not derived from 1024 files: $MAXC"

step "agent a1 attests and serves an SVID"
wcli bundle show >"$T/roots.pem"
TOK1=$(wcli token generate | sed -n 's/^Token: //p')
start_agent a1 -joinToken "$TOK1" -trustBundle "$T/roots.pem"
A1_SOCK=$AGENT_SOCK
A1_LOG=$AGENT_LOG
wait_for grep -q "Node attested as" "$A1_LOG" || fail "a1 did not attest"
AID=$(agent_id "$A1_LOG")
wcli entry create -spiffeID "$TDID/w1" -parentID "$AID" -selector unix:uid:0 >/dev/null
wait_for acli fetch x509 || fail "a1 serves no SVID: $(acli fetch x509 2>&1)"

step "flood: $FLOOD TCP connections that never start TLS"
"$PY" "$T/tcp_flood.py" conns 127.0.0.1 "$SERVER_PORT" "$FLOOD" "$(scaled 30)" \
  >"$T/flood.out" 2>&1 &
FLOOD_PID=$!
PIDS+=("$FLOOD_PID")
wait_for -t 40 grep -q "^connected=" "$T/flood.out" || fail "flood: $(cat "$T/flood.out")"
N=$(sed -n 's/^connected=//p' "$T/flood.out")
[ "$N" -ge 1100 ] || fail "only $N flood connections were made"
# The relay closes the oldest unauthenticated connections for the newcomers.
wait_for limited_reaches connections_evicted 1 || fail "no connection was evicted"
kill -0 "$SERVER_PID" || fail "the server died in the flood"
F=$(fds)
echo "server holds $F descriptors with $N flood connections made (cap $MAXC)"
[ "$F" -lt 1000 ] || fail "the server holds $F descriptors"

step "the flood ends; a fresh agent attests with a join token"
kill -TERM "$FLOOD_PID"
wait "$FLOOD_PID" 2>/dev/null || true
T0=$(now_ms)
TOK2=$(wcli token generate | sed -n 's/^Token: //p')
start_agent a2 -joinToken "$TOK2" -trustBundle "$T/roots.pem"
wait_for -t 20 grep -q "Node attested as" "$AGENT_LOG" ||
  fail "a2 did not attest after the flood: $(tail -n 5 "$AGENT_LOG")"
echo "a2 attested $(($(now_ms) - T0)) ms after the flood ended"
! grep -q "Failed accept4" "$SERVER_LOG" || fail "gRPC failed to accept: $(grep -m1 accept4 "$SERVER_LOG")"

step "a1 kept its sync stream: an entry made now reaches it"
AGENT_SOCK=$A1_SOCK
wcli entry create -spiffeID "$TDID/w2" -parentID "$AID" -selector unix:uid:0 >/dev/null
wait_for eval "acli fetch x509 | grep -q '$TDID/w2'" ||
  fail "a1 did not get the new entry: $(acli fetch x509 2>&1 | head -n 5)"
grep -q "Sync stream lost" "$A1_LOG" && fail "a1 lost its sync stream"
echo "server holds $(fds) descriptors after the flood"
pass
