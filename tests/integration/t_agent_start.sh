#!/bin/bash
# Agent start-up refusals on real processes: a second agent on a data dir in use exits with
# one line naming the first one's pid (and the lock dies with its holder, even on
# SIGKILL); a -socketPath inside -dataDir is refused; a start that fails (a refused join
# token, a busy Workload API socket, a busy health port, a data dir in use) leaves the
# file system exactly as it found it: no new directories, no lock file, no socket.
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org

# tree: every path under $T except the logs and what the running agent owns by design.
tree() { find "$T" -mindepth 1 -not -name '*.log' -not -path "$T/uid*" | sort; }

# run_agent NAME ARGS...: one `warden-agent run` in the foreground (it must exit by
# itself, within 60 s scaled); its status in $RC, its output in $T/NAME.log.
run_agent() {
  local name=$1
  shift
  RC=0
  timeout "$(scaled 60)" "$AGENT_BIN" run -trustDomain example.org -serverPort "$SERVER_PORT" \
    -trustBundle "$T/roots.pem" "$@" >"$T/$name.log" 2>&1 || RC=$?
  [ "$RC" -ne 124 ] || fail "$name: still running after $(scaled 60) s"
}

# errors_in LOG: the lines of LOG that are errors or warnings.
errors_in() { grep -E "ERROR|WARN|^Error" "$1" || true; }

step "server, an attested agent"
start_server srv
wcli bundle show >"$T/roots.pem"
TOK=$(wcli token generate | sed -n 's/^Token: //p')
HP=$(free_port)
start_agent a1 -joinToken "$TOK" -trustBundle "$T/roots.pem" -healthAddress "127.0.0.1:$HP"
wait_for grep -q "Node attested as" "$AGENT_LOG" || fail "agent did not attest"
AID=$(agent_id "$AGENT_LOG")
A1_PID=$AGENT_PID A1_DATA=$AGENT_DATA A1_SOCK=$AGENT_SOCK
[ "$(cat "$A1_DATA/agent.lock")" = "$A1_PID" ] || fail "lock file does not hold the agent's pid"
[ "$(stat -c %a "$A1_DATA/agent.lock")" = 600 ] || fail "lock file mode"
wcli entry create -spiffeID "$TDID/w1" -parentID "$AID" -selector unix:uid:0 >/dev/null
wait_for acli fetch x509 || fail "no SVID: $(acli fetch x509 2>&1)"

step "a second agent on the same data dir: one line naming the holder, nothing changed"
BEFORE=$(tree)
DATA_BEFORE=$(cd "$A1_DATA" && find . -printf '%p %s %T@\n' | sort)
TOK2=$(wcli token generate | sed -n 's/^Token: //p')
run_agent dup -dataDir "$A1_DATA" -socketPath "$T/dup/api.sock" -joinToken "$TOK2" \
  -healthAddress "127.0.0.1:$HP"
[ "$RC" -eq 1 ] || fail "second agent exited with $RC"
[ "$(errors_in "$T/dup.log" | wc -l)" -eq 1 ] || fail "not one error line: $(cat "$T/dup.log")"
assert_contains "$(cat "$T/dup.log")" "Data directory $A1_DATA is in use by another agent (pid $A1_PID)"
[ "$(tree)" = "$BEFORE" ] || fail "the refused agent changed files: $(diff <(echo "$BEFORE") <(tree))"
[ "$(cd "$A1_DATA" && find . -printf '%p %s %T@\n' | sort)" = "$DATA_BEFORE" ] ||
  fail "the refused agent touched the data dir"
expect_ok "first agent still serves" acli fetch x509
assert_contains "$OUT" "$TDID/w1"

step "-socketPath inside -dataDir is refused before anything is made"
BEFORE=$(tree)
run_agent insock -dataDir "$T/in.data" -socketPath "$T/in.data/sock/api.sock" -joinToken "$TOK2"
[ "$RC" -eq 1 ] || fail "socket inside the data dir: exit $RC"
assert_contains "$(cat "$T/insock.log")" "-socketPath: $T/in.data/sock/api.sock is inside -dataDir $T/in.data"
[ "$(wc -l <"$T/insock.log")" -eq 1 ] || fail "not one line: $(cat "$T/insock.log")"
[ "$(tree)" = "$BEFORE" ] || fail "files made: $(diff <(echo "$BEFORE") <(tree))"

step "a refused join token leaves no directory behind (fresh nested dirs)"
BEFORE=$(tree)
run_agent badtok -dataDir "$T/fresh/a/b/data" -socketPath "$T/freshsock/x/api.sock" \
  -joinToken not-a-token
[ "$RC" -eq 1 ] || fail "refused token: exit $RC"
assert_contains "$(cat "$T/badtok.log")" "join token is invalid, expired or already used"
[ "$(tree)" = "$BEFORE" ] || fail "left behind: $(diff <(echo "$BEFORE") <(tree))"

step "a refused join token on an existing empty data dir: it stays, still empty"
mkdir -m 700 "$T/empty.data"
mkdir -m 755 "$T/emptysock"
BEFORE=$(tree)
run_agent badtok2 -dataDir "$T/empty.data" -socketPath "$T/emptysock/api.sock" \
  -joinToken not-a-token
[ "$RC" -eq 1 ] || fail "refused token: exit $RC"
[ "$(tree)" = "$BEFORE" ] || fail "left behind: $(diff <(echo "$BEFORE") <(tree))"

step "a busy Workload API socket or health port leaves nothing behind"
BEFORE=$(tree)
run_agent busysock -dataDir "$T/bs/data" -socketPath "$A1_SOCK" -joinToken "$TOK2"
[ "$RC" -eq 1 ] || fail "busy socket: exit $RC"
assert_contains "$(cat "$T/busysock.log")" "Failed to start the Workload API on $A1_SOCK"
[ "$(tree)" = "$BEFORE" ] || fail "left behind: $(diff <(echo "$BEFORE") <(tree))"
expect_ok "the socket's owner still serves" acli fetch x509
run_agent busyhp -dataDir "$T/bh/data" -socketPath "$T/bh/sock/api.sock" -joinToken "$TOK2" \
  -healthAddress "127.0.0.1:$HP"
[ "$RC" -eq 1 ] || fail "busy health port: exit $RC"
assert_contains "$(cat "$T/busyhp.log")" "Failed to serve the health endpoints on 127.0.0.1:$HP"
[ "$(tree)" = "$BEFORE" ] || fail "left behind: $(diff <(echo "$BEFORE") <(tree))"

step "the lock dies with its holder: SIGKILL, then a restart without token works"
kill -KILL "$A1_PID"
wait "$A1_PID" 2>/dev/null || true
rm -f "$A1_SOCK"
start_agent a1 -healthAddress "127.0.0.1:$HP"
wait_for acli fetch x509 || fail "no SVID after the restart: $(tail -n 5 "$AGENT_LOG")"
assert_contains "$(cat "$AGENT_LOG")" "Using the node SVID of $AID"
[ "$(cat "$A1_DATA/agent.lock")" = "$AGENT_PID" ] || fail "lock file does not name the new agent"

step "the unused token still works: nothing above consumed it"
start_agent a2 -joinToken "$TOK2" -trustBundle "$T/roots.pem"
wait_for grep -q "Node attested as" "$AGENT_LOG" || fail "a2 did not attest with the second token"
stop_agent
stop_server
pass
