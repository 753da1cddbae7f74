#!/usr/bin/env bash
# warden-server: the CA timer drives rotation in a running server. With -caTTL 30s the
# next CA is published after ~15 s, the node API's TLS certificate is re-issued and
# reloaded, agents can still attest against the new bundle, and systemd gets a STATUS=
# line naming the rotation.
. "$(dirname "$0")/lib.sh"

TD=example.org
NODE="$PY $WARDEN_SOURCE_DIR/tests/integration/server_node_client.py"
roots() { wcli bundle show | grep -c "BEGIN CERTIFICATE"; }
# The serial of the certificate the node API presents right now.
served_serial() {
  openssl s_client -connect "127.0.0.1:$SERVER_PORT" -alpn h2 </dev/null 2>/dev/null |
    openssl x509 -noout -serial
}

"$PY" - "$T/notify.sock" "$T/notify.out" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(4096).decode().replace("\n", "|") + "\n")
        f.flush()
EOF
PIDS+=($!)
wait_socket "$T/notify.sock"
export NOTIFY_SOCKET="$T/notify.sock"
start_server rot -caTTL 30s -defaultX509SVIDTTL 10s -minX509SVIDTTL 5s
unset NOTIFY_SOCKET
[ "$(roots)" = 1 ] || fail "a fresh server has $(roots) roots"
SERIAL0=$(served_serial)
[ -n "$SERIAL0" ] || fail "no certificate from the node API"
SEQ0=$(wcli bundle show -format spiffe | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["spiffe_sequence"])')

step "the next CA appears in the bundle at half-life"
two_roots() { [ "$(roots)" -ge 2 ]; }
wait_for -t 30 two_roots || fail "no second root after $(scaled 30) s"
grep -q "CA rotated: bundle sequence" "$SERVER_LOG" || fail "rotation not logged"
SEQ1=$(wcli bundle show -format spiffe | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["spiffe_sequence"])')
[ "$SEQ1" -gt "$SEQ0" ] || fail "bundle sequence did not grow ($SEQ0 -> $SEQ1)"
wait_for grep -q "^STATUS=Serving trust domain example.org: 0 entries, 0 agents; CA rotated, bundle sequence [0-9]*$" \
  "$T/notify.out" || fail "no STATUS= after the rotation: $(cat "$T/notify.out")"

step "the node API serves a fresh certificate and agents still attest"
[ "$(served_serial)" != "$SERIAL0" ] || fail "the node API still serves $SERIAL0"
wcli bundle show >"$T/bundle.pem"
mkdir "$T/a"
TOKEN=$(wcli token generate | sed -n 's/^Token: //p')
ID=$($NODE attest "127.0.0.1:$SERVER_PORT" "$T/bundle.pem" "$TOKEN" "$T/a") || fail "attest: $ID"
[ "$ID" = "spiffe://example.org/warden/agent/join_token/$TOKEN" ] || fail "agent ID $ID"
openssl verify -CAfile "$T/bundle.pem" "$T/a/agent.pem" || fail "node SVID vs bundle"
stop_server

pass
