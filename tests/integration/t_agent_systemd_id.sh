#!/bin/bash
# The systemd:id selector end to end: a process running inside a systemd unit gets the
# SVID of an entry that selects that unit, and the same program outside the unit does
# not. With systemd as PID 1 the process is started by `systemd-run --scope`; without it
# (containers, this CI) the process is put into a "<name>.service" cgroup by hand, which
# is exactly what sd_pid_get_unit() reads. Skips with a clear message only when neither
# is possible.
. "$(dirname "$0")/lib.sh"

TDID=spiffe://example.org
CG_DIRS=()
cleanup_cgroups() {
  local d
  for d in "${CG_DIRS[@]:-}"; do [ -n "$d" ] && rmdir "$d" 2>/dev/null || true; done
}

if [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ] && command -v systemd-run >/dev/null; then
  MODE=systemd-run
  UNIT="warden-it-$$.scope"
  in_unit() { systemd-run --scope --quiet --unit="${UNIT%.scope}" -- "$@"; }
else
  MODE=cgroup
  UNIT="warden-it-$$.service"
  for base in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup; do
    [ -w "$base" ] && [ -f "$base/cgroup.procs" ] || continue
    mkdir "$base/$UNIT" 2>/dev/null || continue
    CG_DIRS+=("$base/$UNIT")
  done
  if [ ${#CG_DIRS[@]} -eq 0 ]; then
    echo "SKIP: no systemd as PID 1 and no writable cgroup hierarchy to place a process in a unit"
    TEST_OK=1
    exit 0
  fi
  # in_unit CMD...: runs CMD inside every cgroup made for the unit.
  in_unit() {
    bash -c 'for d in "$@"; do [ "$d" = -- ] && break; echo $$ >"$d/cgroup.procs"; done
             while [ "$1" != -- ]; do shift; done; shift; exec "$@"' \
      in_unit "${CG_DIRS[@]}" -- "$@"
  }
fi
trap 'cleanup_cgroups; teardown' EXIT
step "mode: $MODE, unit $UNIT"

start_server srv
wcli bundle show >"$T/roots.pem"
TOK=$(wcli token generate | sed -n 's/^Token: //p')
start_agent a1 -joinToken "$TOK" -trustBundle "$T/roots.pem"
wait_for grep -q "Node attested as" "$AGENT_LOG" || fail "agent did not attest"
AID=$(agent_id "$AGENT_LOG")
wcli entry create -spiffeID "$TDID/unit/worker" -parentID "$AID" -selector "systemd:id:$UNIT" >/dev/null

step "inside the unit: the process gets the unit's identity"
fetch_in_unit() { OUT=$(in_unit "$AGENT_BIN" api fetch x509 -socketPath "$AGENT_SOCK" 2>&1); }
wait_for fetch_in_unit || fail "no SVID inside $UNIT: $OUT"
assert_contains "$OUT" "$TDID/unit/worker"

step "outside the unit: no identity"
expect_fail "outside the unit" acli fetch x509
assert_contains "$OUT" "PERMISSION_DENIED"

stop_agent
stop_server
pass
