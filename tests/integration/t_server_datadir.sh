#!/usr/bin/env bash
# warden-server start-up refusals on real processes: a second server on the first one's
# port or data dir, a data dir of another owner or writable by others, failed starts
# (busy admin socket, busy health port) that must leave nothing behind, and a lost ca/
# that must not silently become a new CA.
. "$(dirname "$0")/lib.sh"

# run_fail NAME ARGS...: `warden-server run` that must exit 1 within 30 s; log in $T/NAME.log,
# its text in $OUT.
run_fail() {
  local name=$1 rc=0
  shift
  timeout 30 "$SERVER_BIN" run -trustDomain example.org "$@" >"$T/$name.log" 2>&1 || rc=$?
  OUT=$(cat "$T/$name.log")
  [ "$rc" -eq 1 ] || fail "$name: exit status $rc, expected 1: $OUT"
}

step "a second server on the first one's -serverPort exits with 'address in use'"
PORT=$(free_port)
start_server one -serverPort "$PORT"
ONE_PID=$SERVER_PID
run_fail port -dataDir "$T/port.data" -socketPath "$T/port.sock" -serverPort "$PORT"
assert_contains "$OUT" "Cannot listen on 127.0.0.1:$PORT: address in use"
[ "$(grep -c . "$T/port.log")" -eq 1 ] || fail "more than one line: $OUT"
[ ! -e "$T/port.data" ] || fail "the refused server created its data dir"
[ ! -e "$T/port.sock" ] || fail "the refused server left its admin socket"
expect_ok "the first server still serves" wcli healthcheck

step "a second server on the same -dataDir names the holder's pid"
run_fail dir -dataDir "$T/one.data" -socketPath "$T/dir.sock" -serverPort 0
assert_contains "$OUT" "Data directory $T/one.data is in use by another server (pid $ONE_PID)"
[ "$(grep -c . "$T/dir.log")" -eq 1 ] || fail "more than one line: $OUT"
[ ! -e "$T/dir.sock" ] || fail "the refused server left its admin socket"
[ "$(cat "$T/one.data/server.lock")" = "$ONE_PID" ] || fail "lock file does not hold the pid"
[ "$(stat -c %a "$T/one.data/server.lock")" = 600 ] || fail "lock file mode"

step "failed starts leave no data dir and no CA behind"
run_fail sock -dataDir "$T/new1/data" -socketPath "$SERVER_SOCK" -serverPort 0
assert_contains "$OUT" "Admin socket $SERVER_SOCK is in use by another server"
[ ! -e "$T/new1" ] || fail "busy admin socket: $T/new1 was created"
HPORT=$(free_port)
"$PY" -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); print("ok", flush=True); time.sleep(120)' \
  "$HPORT" >"$T/hport.out" &
PIDS+=($!)
wait_for grep -q ok "$T/hport.out" || fail "no listener on the health port"
run_fail health -dataDir "$T/new2" -socketPath "$T/health.sock" -serverPort 0 \
  -healthAddress "127.0.0.1:$HPORT"
assert_contains "$OUT" "Failed to serve the health endpoints on 127.0.0.1:$HPORT"
[ ! -e "$T/new2" ] || fail "busy health port: $T/new2 was created"
[ ! -e "$T/health.sock" ] || fail "busy health port: admin socket left behind"
stop_server

step "an existing data dir is kept as it was by a failed start"
start_server keep
wcli entry create -spiffeID spiffe://example.org/w -parentID spiffe://example.org/p \
  -selector unix:uid:7 >/dev/null
stop_server
# Names, sizes, mtimes and modes of the data dir, its files and ca/ (not the lock file,
# whose pid a start rewrites, nor the parent).
listing() { (cd "$T/keep.data" && stat -c '%n %s %Y %a' . ./* ca ca/* | grep -v server.lock); }
BEFORE=$(listing)
run_fail keep2 -dataDir "$T/keep.data" -socketPath "$T/keep2.sock" -serverPort 0 \
  -healthAddress "127.0.0.1:$HPORT"
[ "$BEFORE" = "$(listing)" ] || fail "a failed start changed $T/keep.data: $(listing)"

step "a data dir owned by another uid, or writable by group or others, is refused"
mkdir -p "$T/other.data"
chown 65534 "$T/other.data"
run_fail owner -dataDir "$T/other.data" -socketPath "$T/owner.sock" -serverPort 0
assert_contains "$OUT" "-dataDir $T/other.data is owned by uid 65534, not by the server's uid 0"
[ -z "$(ls -A "$T/other.data")" ] || fail "the refused server wrote into $T/other.data"
for mode in 0770 0707 0777; do
  chmod "$mode" "$T/keep.data"
  run_fail "mode$mode" -dataDir "$T/keep.data" -socketPath "$T/mode.sock" -serverPort 0
  assert_contains "$OUT" "-dataDir $T/keep.data is writable by group or others (mode $mode)"
  assert_contains "$OUT" "chmod go-w $T/keep.data"
done
chmod 0700 "$T/keep.data"
chmod 0777 "$T/keep.data/ca"
run_fail camode -dataDir "$T/keep.data" -socketPath "$T/mode.sock" -serverPort 0
assert_contains "$OUT" "CA directory $T/keep.data/ca is writable by group or others (mode 0777)"
chmod 0700 "$T/keep.data/ca"
chmod 0755 "$T/keep.data"
start_server keep
[ "$(wcli entry count -output json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["count"])')" = 1 ] ||
  fail "entry lost"
stop_server

step "a lost ca/ is not replaced by a new CA unless -forceNewCA"
start_server keep
OLD_BUNDLE=$(wcli bundle show)
stop_server
mv "$T/keep.data/ca" "$T/ca.saved"
run_fail lostca -dataDir "$T/keep.data" -socketPath "$T/lost.sock" -serverPort 0
assert_contains "$OUT" "$T/keep.data/ca is missing but the datastore records a CA"
assert_contains "$OUT" "1 entries, 0 agents"
assert_contains "$OUT" "-forceNewCA"
[ ! -e "$T/keep.data/ca" ] || fail "a CA was created"
mv "$T/ca.saved" "$T/keep.data/ca"
start_server keep
[ "$(wcli bundle show)" = "$OLD_BUNDLE" ] || fail "the restored CA is not the old one"
stop_server
# With no entry and no agent left, the datastore's CA record alone still counts.
rm -rf "$T/keep.data/ca"
"$PY" -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("PRAGMA foreign_keys=ON"); c.execute("DELETE FROM entries"); c.commit()' \
  "$T/keep.data/datastore.sqlite3"
run_fail lostca2 -dataDir "$T/keep.data" -socketPath "$T/lost.sock" -serverPort 0
assert_contains "$OUT" "the datastore records a CA (a CA created at "
start_server keep -forceNewCA
grep -q "WARN server: -forceNewCA: creating a new CA" "$SERVER_LOG" || fail "no -forceNewCA warning"
[ "$(wcli bundle show)" != "$OLD_BUNDLE" ] || fail "-forceNewCA kept the old CA"
stop_server

pass
