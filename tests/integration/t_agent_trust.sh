#!/bin/bash
# First contact with a server the agent cannot trust: a wrong -trustBundle (the server's
# certificate does not verify) or a wrong -trustDomain (it verifies but is not
# spiffe://<td>/warden/server) ends the agent with status 1 within 60 s and one error line
# that says which and what was expected, leaving nothing behind and the join token unused.
# A server that is merely unreachable is retried, and no gRPC failure is dressed up with an
# errno text ("Resource temporarily unavailable").
. "$(dirname "$0")/lib.sh"

# first_contact NAME ARGS...: a fresh agent in the foreground; exits by itself or fails
# the test after 60 s. Status in $RC, output in $T/NAME.log, seconds taken in $SECS.
first_contact() {
  local name=$1 t0
  shift
  t0=$(now_ms)
  RC=0
  timeout 60 "$AGENT_BIN" run -serverPort "$SERVER_PORT" -dataDir "$T/$name.data" \
    -socketPath "$T/$name/api.sock" -joinToken "$TOK" "$@" >"$T/$name.log" 2>&1 || RC=$?
  SECS=$((($(now_ms) - t0) / 1000))
  [ "$RC" -ne 124 ] || fail "$name: still retrying after 60 s: $(tail -n 3 "$T/$name.log")"
  echo "$name: exit $RC after ${SECS} s"
}

errors_in() { grep -E " (ERROR|WARN) " "$1" || true; }

no_errno_text() {
  assert_not_contains "$(cat "$1")" "Resource temporarily unavailable" "$1"
  assert_not_contains "$(cat "$1")" "Connection reset by peer" "$1"
}

step "server, its bundle, another CA, one join token"
start_server srv
wcli bundle show >"$T/roots.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/other.key" \
  -subj "/CN=Other CA" -days 1 -addext "basicConstraints=critical,CA:TRUE" \
  -out "$T/other.pem" 2>/dev/null
TOK=$(wcli token generate | sed -n 's/^Token: //p')
[ -n "$TOK" ] || fail "no token"

step "wrong -trustBundle: exit 1, one line naming the bundle and the trust domain"
first_contact badroots -trustDomain example.org -trustBundle "$T/other.pem"
[ "$RC" -eq 1 ] || fail "wrong bundle: exit $RC"
ERR=$(errors_in "$T/badroots.log")
[ "$(echo "$ERR" | wc -l)" -eq 1 ] || fail "not one error line: $ERR"
assert_contains "$ERR" "ERROR agent: Cannot continue: the server's certificate does not verify against the trust bundle (1 CA certificate from -trustBundle $T/other.pem): give the bundle of trust domain example.org"
no_errno_text "$T/badroots.log"
[ ! -e "$T/badroots.data" ] && [ ! -e "$T/badroots" ] || fail "the failed start left directories"

step "wrong -trustDomain: exit 1, one line with the presented and the expected server ID"
first_contact badtd -trustDomain other.org -trustBundle "$T/roots.pem"
[ "$RC" -eq 1 ] || fail "wrong trust domain: exit $RC"
ERR=$(errors_in "$T/badtd.log")
[ "$(echo "$ERR" | wc -l)" -eq 1 ] || fail "not one error line: $ERR"
assert_contains "$ERR" "Cannot continue: the server is not the server of trust domain other.org: server SPIFFE ID mismatch: presented spiffe://example.org/warden/server, expected spiffe://other.org/warden/server (check -trustDomain)"
no_errno_text "$T/badtd.log"

step "an unreachable server is retried, with gRPC's reason and no errno text"
DEAD=$(free_port)
"$AGENT_BIN" run -trustDomain example.org -serverPort "$DEAD" -dataDir "$T/dead.data" \
  -socketPath "$T/dead/api.sock" -joinToken "$TOK" -trustBundle "$T/roots.pem" \
  >"$T/dead.log" 2>&1 &
DEAD_PID=$!
PIDS+=("$DEAD_PID")
retried() { [ "$(grep -c "Server unreachable; retrying" "$T/dead.log")" -ge 2 ]; }
wait_for retried || fail "no retries: $(cat "$T/dead.log")"
kill -0 "$DEAD_PID" || fail "the agent gave up on an unreachable server"
assert_contains "$(cat "$T/dead.log")" "error=failed to connect to all addresses"
no_errno_text "$T/dead.log"
kill -TERM "$DEAD_PID"
wait_exit "$DEAD_PID"
[ "$EXIT_RC" -eq 0 ] || fail "stopped agent exited with $EXIT_RC"

step "the token was never spent: the right bundle and trust domain attest with it"
start_agent good -joinToken "$TOK" -trustBundle "$T/roots.pem"
wait_for grep -q "Node attested as" "$AGENT_LOG" || fail "did not attest: $(tail -n 5 "$AGENT_LOG")"
stop_agent
stop_server
pass
