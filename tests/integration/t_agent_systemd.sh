#!/bin/bash
# systemd integration of `warden-agent run`: socket activation (the listening fd from
# sd_listen_fds is served instead of -socketPath), sd_notify READY=1 / STATUS= /
# WATCHDOG=1 (WATCHDOG_USEC set) / STOPPING=1 on SIGTERM, and a clean exit.
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org

step "server, token, a notify socket listener"
start_server srv
wcli bundle show >"$T/roots.pem"
TOK=$(wcli token generate | sed -n 's/^Token: //p')
"$PY" -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    print(s.recv(4096).decode().replace("\n", "|"), flush=True)
' "$T/notify.sock" >"$T/notify.out" 2>&1 &
PIDS+=("$!")
wait_socket "$T/notify.sock"

step "socket-activated agent"
mkdir -p "$T/sa"
systemd-socket-activate -l "$T/sa/api.sock" -E NOTIFY_SOCKET="$T/notify.sock" \
  -E WATCHDOG_USEC=400000 -E LSAN_OPTIONS="${LSAN_OPTIONS:-}" -E ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
  -E TSAN_OPTIONS="${TSAN_OPTIONS:-}" \
  "$AGENT_BIN" run -trustDomain example.org -serverPort "$SERVER_PORT" -dataDir "$T/a.data" \
  -socketPath "$T/unused/api.sock" -joinToken "$TOK" -trustBundle "$T/roots.pem" \
  >"$T/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
AGENT_SOCK="$T/sa/api.sock"
wait_socket "$AGENT_SOCK"
# The first connection makes systemd-socket-activate exec the agent.
"$AGENT_BIN" api fetch x509 -socketPath "$AGENT_SOCK" >/dev/null 2>&1 || true
wait_for grep -q "READY=1" "$T/notify.out" || fail "no READY=1: $(cat "$T/notify.out")"
wait_for grep -q "Node attested as" "$T/agent.log" || fail "agent did not attest"
AID=$(agent_id "$T/agent.log")
wcli entry create -spiffeID "$TDID/sa" -parentID "$AID" -selector unix:uid:0 >/dev/null
wait_for acli fetch x509 || fail "no SVID over the activated socket: $(acli fetch x509 2>&1)"
expect_ok "fetch over the activated socket" acli fetch x509
assert_contains "$OUT" "$TDID/sa"
[ ! -e "$T/unused/api.sock" ] || fail "-socketPath was bound although a socket was passed"
assert_contains "$(cat "$T/agent.log")" "Using the Workload API socket passed by systemd"

step "STATUS and WATCHDOG notifications"
wait_for grep -q "STATUS=Serving 1 SVIDs for 1 entries (server connected)" "$T/notify.out" ||
  fail "no STATUS line with the SVID count: $(cat "$T/notify.out")"
sleep 1
[ "$(grep -c "WATCHDOG=1" "$T/notify.out")" -ge 3 ] ||
  fail "too few WATCHDOG=1 in 1 s: $(grep -c WATCHDOG=1 "$T/notify.out")"

step "SIGTERM: STOPPING=1 and a clean exit; the passed socket stays"
stop_agent
grep -q "STOPPING=1" "$T/notify.out" || fail "no STOPPING=1"
[ -S "$AGENT_SOCK" ] || fail "the socket-activated socket was unlinked"
stop_server
pass
