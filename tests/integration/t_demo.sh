#!/bin/bash
# The README's first command, scripts/demo.sh, run against this build: every step of
# the walk-through must behave as printed (it exits non-zero otherwise).
. "$(dirname "$0")/lib.sh"

step "scripts/demo.sh against $WARDEN_BUILD_DIR"
WARDEN_DEMO_BUILD="$WARDEN_BUILD_DIR" bash "$WARDEN_SOURCE_DIR/scripts/demo.sh" >"$T/demo.log" 2>&1 ||
  fail "demo failed: $(tail -n 30 "$T/demo.log")"
grep -q "Demo complete: every step behaved as shown." "$T/demo.log" || fail "no completion line"
[ "$(grep -c '✔' "$T/demo.log")" -ge 10 ] || fail "fewer than 10 checked steps"
if ls /tmp/warden-demo.* >/dev/null 2>&1 && pgrep -f "warden-demo" >/dev/null; then
  fail "the demo left processes behind"
fi
pass
