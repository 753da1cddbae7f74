#!/usr/bin/env bash
# warden-agent operator verbs on real processes: `validate` (a config file and flags
# checked without starting: exit 0, or one line and exit 1; -output json) and `logger
# get|set|reset` through the running agent's loopback GET/PUT /logger, which a SIGHUP
# reload resets to the configured level.
. "$(dirname "$0")/lib.sh"

json() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

step "validate: without starting"
start_server srv
wcli bundle show >"$T/bundle.pem"
cat >"$T/agent.conf" <<EOF
trustDomain = "example.org"
serverPort = $SERVER_PORT
dataDir = "$T/ag.data"
socketPath = "$T/ag/api.sock"
trustBundle = "$T/bundle.pem"
logLevel = "info"
EOF
expect_ok "valid" "$AGENT_BIN" validate -config "$T/agent.conf"
[ "$OUT" = "Configuration is valid" ] || fail "validate: $OUT"
[ ! -e "$T/ag.data" ] && [ ! -e "$T/ag" ] || fail "validate created the data dir or socket dir"
rc=0
OUT=$("$AGENT_BIN" validate -config "$T/agent.conf" -logLevel loud 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "bad flag: exit $rc"
[ "$OUT" = 'Error: -logLevel: unknown level "loud" (use error, warning, info or debug)' ] ||
  fail "bad flag: $OUT"
printf 'trustDomian = "example.org"\n' >"$T/typo.conf"
expect_fail "bad file" "$AGENT_BIN" validate -config "$T/typo.conf"
assert_contains "$OUT" "Error: $T/typo.conf:1: no such option 'trustDomian'"
expect_fail "missing file" "$AGENT_BIN" validate -config "$T/none.conf"
assert_contains "$OUT" "Error: "
OUT=$("$AGENT_BIN" validate -config "$T/agent.conf" -trustBundle "$T/none.pem" -output json) &&
  fail "missing bundle accepted"
[ "$(json '(d["valid"], len(d["problems"]))' <<<"$OUT")" = "(False, 1)" ] || fail "json: $OUT"
assert_contains "$OUT" "$T/none.pem"
expect_ok "help" "$AGENT_BIN" validate -h
assert_contains "$OUT" "Usage: warden-agent validate"

step "logger get|set|reset through -healthAddress"
TOKEN=$(wcli token generate | sed -n 's/^Token: //p')
HP=$(free_port)
start_agent ag -config "$T/agent.conf" -joinToken "$TOKEN" -healthAddress "127.0.0.1:$HP"
wait_for "$AGENT_BIN" logger get -healthAddress "127.0.0.1:$HP" || fail "no /logger"
expect_ok "get" "$AGENT_BIN" logger get -healthAddress "127.0.0.1:$HP"
[ "$OUT" = "Log level: info (launch level: info)" ] || fail "get: $OUT"
expect_ok "set" "$AGENT_BIN" logger set -level debug -healthAddress "127.0.0.1:$HP"
[ "$OUT" = "Log level: debug (launch level: info)" ] || fail "set: $OUT"
grep -q "INFO agent: Log level info -> debug (PUT /logger)" "$AGENT_LOG" || fail "not logged"
[ "$("$AGENT_BIN" logger get -healthAddress "127.0.0.1:$HP" -output json | json 'd["current_level"]')" = debug ] ||
  fail "get json"
expect_fail "bad level" "$AGENT_BIN" logger set -level loud -healthAddress "127.0.0.1:$HP"
assert_contains "$OUT" "Error: -level: expected error, warning, info or debug, got \"loud\""
expect_ok "reset" "$AGENT_BIN" logger reset -healthAddress "127.0.0.1:$HP"
[ "$OUT" = "Log level: info (launch level: info)" ] || fail "reset: $OUT"
# A reload re-reads -logLevel: the new launch level, and the level goes back to it.
"$AGENT_BIN" logger set -level debug -healthAddress "127.0.0.1:$HP" >/dev/null
sed -i 's/^logLevel = "info"/logLevel = "warning"/' "$T/agent.conf"
kill -HUP "$AGENT_PID"
wait_for sh -c "'$AGENT_BIN' logger get -healthAddress 127.0.0.1:$HP | grep -qx 'Log level: warning (launch level: warning)'" ||
  fail "after SIGHUP: $("$AGENT_BIN" logger get -healthAddress "127.0.0.1:$HP")"
expect_fail "no address" "$AGENT_BIN" logger get
assert_contains "$OUT" "Error: -healthAddress is required"
expect_fail "not loopback" "$AGENT_BIN" logger get -healthAddress 10.0.0.1:80
assert_contains "$OUT" "Error: -healthAddress: not a loopback address"
expect_fail "nobody listens" "$AGENT_BIN" logger get -healthAddress "127.0.0.1:$(free_port)"
assert_contains "$OUT" "Connection refused"
expect_fail "unknown verb" "$AGENT_BIN" logger frob
assert_contains "$OUT" "Error: unknown command \"logger frob\""
expect_ok "help" "$AGENT_BIN" logger -h
assert_contains "$OUT" "Usage: warden-agent logger get|set -level LEVEL|reset"

step "help for every verb and sub-verb"
expect_ok "api fetch -h" "$AGENT_BIN" api fetch -h
assert_contains "$OUT" "fetch x509"
assert_contains "$OUT" "fetch jwt bundles"
assert_not_contains "$OUT" "watch"
expect_ok "help api fetch jwt" "$AGENT_BIN" help api fetch jwt
assert_contains "$OUT" "Usage: warden-agent api fetch jwt -audience A"
expect_ok "help healthcheck" "$AGENT_BIN" help healthcheck
assert_contains "$OUT" "Usage: warden-agent healthcheck"
expect_ok "help logger" "$AGENT_BIN" help logger
assert_contains "$OUT" "Usage: warden-agent logger"
expect_ok "help run" "$AGENT_BIN" help run
assert_contains "$OUT" "-maxConnectionsPerUID"
expect_fail "incomplete" "$AGENT_BIN" api fetch
assert_contains "$OUT" 'Error: incomplete command "api fetch"'
expect_fail "help for nothing" "$AGENT_BIN" help nope
assert_contains "$OUT" 'Error: unknown command "nope"'
stop_agent
stop_server
pass
