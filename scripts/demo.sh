#!/usr/bin/env bash
# Warden in five minutes: a real issuing server and node agent in a temp directory
# (no root-owned paths, no systemd), two local users getting their own identities over
# the SPIFFE Workload API, a third user refused, an entry deleted while a workload is
# watching, and an agent restart that keeps its node identity.
#
# Exits 0 only if every step behaved as printed. Cleans up its processes and files.
# Usage: scripts/demo.sh            (installs dependencies and builds first)
#        WARDEN_DEMO_BUILD=DIR scripts/demo.sh   (use an existing build directory)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)

BUILD=${WARDEN_DEMO_BUILD:-}
if [ -z "$BUILD" ]; then
  BUILD="$SRC/build"
  bash scripts/install-deps.sh >/dev/null
  echo "Building Warden (build/)..."
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target warden-server warden-agent >/dev/null
fi
SERVER="$BUILD/server/warden-server"
AGENT="$BUILD/agent/warden-agent"
[ -x "$SERVER" ] && [ -x "$AGENT" ] || { echo "demo: binaries missing in $BUILD" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (workloads run as other users via setpriv)" >&2; exit 1; }

TD=example.org
T=$(mktemp -d /tmp/warden-demo.XXXXXX)
chmod 755 "$T"
# Other users run the workload-side CLI from a copy: the checkout may be private (0700).
mkdir -m 755 "$T/bin"
cp "$AGENT" "$T/bin/warden-agent"
chmod 755 "$T/bin/warden-agent"
WAGENT="$T/bin/warden-agent"
PIDS=()
OK=0

cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  if [ "$OK" != 1 ]; then
    echo
    echo "The demo FAILED. Last lines of the daemon logs:"
    for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $(basename "$f")"; tail -n 15 "$f"; }; done
  fi
  rm -rf "$T"
}
trap cleanup EXIT

B= N=
if [ -t 1 ]; then
  B=$(tput bold 2>/dev/null || true)
  N=$(tput sgr0 2>/dev/null || true)
fi
STEP=0
step() { STEP=$((STEP + 1)); echo; echo "${B}[$STEP] $*${N}"; }
say() { echo "    $*"; }
show() { sed 's/^/      | /'; }
ok() { echo "    ✔ $*"; }
die() { echo "    ✘ $*" >&2; exit 1; }
# wait_for CMD...: polls CMD until it succeeds, for at most 10 s (times WARDEN_TIME_SCALE,
# for slow builds).
wait_for() {
  local end=$((SECONDS + 10 * ${WARDEN_TIME_SCALE:-1}))
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.1
  done
}
as_user() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@"; }
# exec_as_user U CMD... &: as_user for a background job. The job's shell execs setpriv, and
# setpriv execs CMD, so $! is CMD's own pid (a plain `as_user ... &` leaves $! pointing at
# a subshell, and killing that orphans CMD).
exec_as_user() { local u=$1; shift; exec setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@"; }
srv() { "$SERVER" "$1" "$2" -socketPath "$T/server.sock" "${@:3}"; }
api() { "$AGENT" api "$@" -socketPath "$T/agent/api.sock"; }
start_agent() {
  "$AGENT" run -trustDomain "$TD" -serverPort "$PORT" -dataDir "$T/agent.data" \
    -socketPath "$T/agent/api.sock" "$@" >>"$T/agent.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
  wait_for test -S "$T/agent/api.sock" || die "the agent did not open its socket"
}

NOBODY=65534
STRANGER=4242

step "Start the issuing server (trust domain $TD, SQLite datastore in a temp dir)"
"$SERVER" run -trustDomain "$TD" -dataDir "$T/server.data" -socketPath "$T/server.sock" \
  -serverPort 0 >"$T/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for grep -q "node API listening on" "$T/server.log" || die "the server did not start"
PORT=$(sed -n 's/.*node API listening on .*:\([0-9]*\)$/\1/p' "$T/server.log" | tail -n 1)
wait_for "$SERVER" healthcheck -socketPath "$T/server.sock" || die "server not healthy"
"$SERVER" healthcheck -socketPath "$T/server.sock" | show
ok "server up: node API (mutual TLS) on 127.0.0.1:$PORT, admin API on $T/server.sock"

step "Admin: fetch the trust bundle and make a one-time join token for the node"
srv bundle show >"$T/bundle.pem"
openssl x509 -in "$T/bundle.pem" -noout -subject -ext subjectAltName 2>/dev/null | show
TOKEN=$(srv token generate -ttl 600 | sed -n 's/^Token: //p')
[ -n "$TOKEN" ] || die "no join token"
ok "join token ${TOKEN:0:6}… (single use, expires in 10 minutes)"

step "Start the node agent: it attests with the token and gets its node SVID"
start_agent -joinToken "$TOKEN" -trustBundle "$T/bundle.pem"
wait_for grep -q "Node attested as" "$T/agent.log" || die "the agent did not attest"
AGENT_ID=$(grep -o "spiffe://[^ ]*/warden/agent/[^ )]*" "$T/agent.log" | head -n 1)
srv agent list | show
ok "agent attested as $AGENT_ID; Workload API on $T/agent/api.sock"

step "Admin: register one workload identity per local user"
srv entry create -parentID "$AGENT_ID" -spiffeID "spiffe://$TD/billing/api" \
  -selector unix:uid:0 -x509SVIDTTL 300 | show
WEB_ENTRY=$(srv entry create -parentID "$AGENT_ID" -spiffeID "spiffe://$TD/web/frontend" \
  -selector "unix:uid:$NOBODY" -dns web.example.org | tee "$T/entry.out" |
  sed -n 's/^Entry ID *: *//p')
show <"$T/entry.out"
[ -n "$WEB_ENTRY" ] || die "entry create printed no entry ID"
ok "uid 0 → spiffe://$TD/billing/api, uid $NOBODY → spiffe://$TD/web/frontend"

step "uid 0 fetches its X.509-SVID over the Workload API (kernel peer credentials, no secret)"
wait_for api fetch x509 || die "uid 0 got no SVID: $(api fetch x509 2>&1)"
api fetch x509 -write "$T/root-svid" | show
grep -q "spiffe://$TD/billing/api" < <(api fetch x509) || die "wrong identity for uid 0"
openssl verify -CAfile "$T/bundle.pem" "$T/root-svid/svid.0.pem" | show
ok "the SVID chains to the trust bundle; its key (svid.0.key, mode $(stat -c %a "$T/root-svid/svid.0.key")) never left this node"

step "uid $NOBODY fetches its own identity, and only that"
wait_for as_user "$NOBODY" "$WAGENT" api fetch x509 -socketPath "$T/agent/api.sock" ||
  die "uid $NOBODY got no SVID"
as_user "$NOBODY" "$WAGENT" api fetch x509 -socketPath "$T/agent/api.sock" >"$T/nobody.out"
show <"$T/nobody.out"
grep -q "spiffe://$TD/web/frontend" "$T/nobody.out" || die "wrong identity for uid $NOBODY"
if grep -q "billing" "$T/nobody.out"; then die "uid $NOBODY saw uid 0's identity"; fi
ok "uid $NOBODY holds spiffe://$TD/web/frontend and nothing else"

step "uid $NOBODY gets a JWT-SVID for audience 'payments'; uid 0 validates it"
JWT=$(as_user "$NOBODY" "$WAGENT" api fetch jwt -audience payments \
  -socketPath "$T/agent/api.sock" -output json |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["svids"][0]["svid"])')
[ -n "$JWT" ] || die "no JWT-SVID"
say "token: ${JWT:0:40}… (signed ES256, expires in minutes)"
api validate jwt -audience payments -svid "$JWT" | show
if api validate jwt -audience other -svid "$JWT" >"$T/v.out" 2>&1; then
  die "a token for 'payments' validated for audience 'other'"
fi
show <"$T/v.out"
ok "valid for 'payments', refused for any other audience"

step "A process of a third user (uid $STRANGER) with no registration entry is refused"
if as_user "$STRANGER" "$WAGENT" api fetch x509 -socketPath "$T/agent/api.sock" >"$T/s.out" 2>&1; then
  die "uid $STRANGER received an identity"
fi
show <"$T/s.out"
grep -q PERMISSION_DENIED "$T/s.out" || die "expected PERMISSION_DENIED"
ok "no entry, no identity"

step "uid $NOBODY watches its identity; the admin deletes its entry"
exec_as_user "$NOBODY" "$WAGENT" api watch -socketPath "$T/agent/api.sock" >"$T/watch.out" 2>&1 &
WATCH_PID=$!
PIDS+=("$WATCH_PID")
wait_for grep -q "spiffe://$TD/web/frontend" "$T/watch.out" || die "watch saw nothing"
say "watch is streaming; deleting entry $WEB_ENTRY..."
T0=$(date +%s%N)
srv entry delete -entryID "$WEB_ENTRY" | show
wait_for grep -qi "PERMISSION_DENIED\|no identity" "$T/watch.out" || die "the SVID did not vanish"
T1=$(date +%s%N)
head -n 12 "$T/watch.out" | show
ok "the stream dropped the identity $(((T1 - T0) / 1000000)) ms after the delete"
kill -TERM "$WATCH_PID" 2>/dev/null || true
wait "$WATCH_PID" 2>/dev/null || true

step "Restart the agent without a token: it keeps its node identity"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || die "the agent did not stop cleanly"
rm -f "$T/agent/api.sock"
start_agent -trustBundle "$T/bundle.pem"
wait_for api fetch x509 || die "no SVID after restart"
AGENT_ID2=$(grep -o "spiffe://[^ ]*/warden/agent/[^ )]*" "$T/agent.log" | tail -n 1)
[ "$AGENT_ID2" = "$AGENT_ID" ] || die "agent ID changed: $AGENT_ID2"
[ "$(srv agent list | grep -c "^SPIFFE ID")" -eq 1 ] || die "the server lists more than one agent"
api fetch x509 | grep "SPIFFE ID" | show
ok "same node SVID ($AGENT_ID), no new attestation, uid 0 still served"

OK=1
echo
echo "${B}Demo complete: every step behaved as shown.${N}"
