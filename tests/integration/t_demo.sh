#!/bin/bash
# The README's first command, scripts/demo.sh, run against this build: every step of
# the walk-through must behave as printed (it exits non-zero otherwise), and nothing it
# started may outlive it. Its processes carry a marker in their environment (setpriv and
# exec keep it), so they are found whatever uid they run as and whatever they exec'd.
. "$(dirname "$0")/lib.sh"

MARK="t_demo.$$.$RANDOM"

# survivors: "pid cmdline" of every process that carries the marker or runs a binary of
# this build from the demo's files.
survivors() {
  local p pid
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = $$ ] && continue
    tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "WARDEN_DEMO_MARK=$MARK" || continue
    echo "$pid $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
  done
}

step "scripts/demo.sh against $WARDEN_BUILD_DIR"
# The demo runs workloads as other users: the sanitizer suppressions must be readable.
LSAN_OPTIONS=suppressions=$(uid_copy "$WARDEN_SOURCE_DIR/tests/lsan.supp") \
  WARDEN_DEMO_MARK=$MARK WARDEN_TIME_SCALE=$WARDEN_TIME_SCALE \
  WARDEN_DEMO_BUILD="$WARDEN_BUILD_DIR" bash "$WARDEN_SOURCE_DIR/scripts/demo.sh" \
  >"$T/demo.log" 2>&1 || fail "demo failed: $(tail -n 30 "$T/demo.log")"
grep -q "Demo complete: every step behaved as shown." "$T/demo.log" || fail "no completion line"
[ "$(grep -c '✔' "$T/demo.log")" -ge 10 ] || fail "fewer than 10 checked steps"

step "nothing the demo started survives it"
LEFT=$(survivors)
[ -z "$LEFT" ] || fail "the demo left processes behind: $LEFT"
DEMO_DIR=$(grep -o '/tmp/warden-demo\.[A-Za-z0-9]*' "$T/demo.log" | head -n 1)
[ -n "$DEMO_DIR" ] || fail "the demo did not print its directory"
[ ! -e "$DEMO_DIR" ] || fail "the demo left $DEMO_DIR"
if pgrep -af -- "$DEMO_DIR" >/dev/null; then fail "processes still use $DEMO_DIR: $(pgrep -af -- "$DEMO_DIR")"; fi
BUILD_PROCS=$(pgrep -af -- "$WARDEN_BUILD_DIR/" | grep -- "$DEMO_DIR" || true)
[ -z "$BUILD_PROCS" ] || fail "build binaries of the demo still run: $BUILD_PROCS"
pass
