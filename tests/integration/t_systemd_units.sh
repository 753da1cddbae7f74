#!/usr/bin/env bash
# The systemd units as CMake configured them: `systemd-analyze verify` finds nothing to
# say, `systemd-analyze security --offline=yes` rates warden-server.service at 2.0 or
# lower and warden-agent.service at 3.0 or lower, the units carry the settings the design
# depends on, sysusers.d/tmpfiles.d entries apply to a scratch root, and `cmake --install`
# stages every file where the units expect it.
# No systemd runs as PID 1 here; verify and offline security analysis do not need one.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

SYSTEMD_DIR="$WARDEN_BUILD_DIR/systemd"
SERVER_MAX=2.0
AGENT_MAX=3.0
command -v systemd-analyze >/dev/null || fail "systemd-analyze not installed"
for u in warden-server.service warden-agent.service warden-agent.socket warden.tmpfiles; do
  [ -f "$SYSTEMD_DIR/$u" ] || fail "$SYSTEMD_DIR/$u was not configured"
done

# unit_value FILE KEY: the last value of KEY= in FILE.
unit_value() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

step "units carry the settings the daemons rely on"
S="$SYSTEMD_DIR/warden-server.service"
A="$SYSTEMD_DIR/warden-agent.service"
K="$SYSTEMD_DIR/warden-agent.socket"
for f in "$S" "$A"; do
  [ "$(unit_value "$f" Type)" = notify ] || fail "$f: Type= is not notify"
  [ -n "$(unit_value "$f" WatchdogSec)" ] || fail "$f: no WatchdogSec="
  [ "$(unit_value "$f" User)" = warden ] || fail "$f: not User=warden"
  [ "$(unit_value "$f" NoNewPrivileges)" = yes ] || fail "$f: NoNewPrivileges"
  [ "$(unit_value "$f" ProtectSystem)" = strict ] || fail "$f: ProtectSystem"
  [ "$(unit_value "$f" RestrictAddressFamilies)" = "AF_UNIX AF_INET AF_INET6" ] ||
    fail "$f: RestrictAddressFamilies"
  grep -qx 'SystemCallFilter=@system-service' "$f" || fail "$f: SystemCallFilter"
  case "$(unit_value "$f" ExecStart)" in
    /*) ;;
    *) fail "$f: ExecStart is not an absolute path" ;;
  esac
done
[ -z "$(unit_value "$S" CapabilityBoundingSet)" ] || fail "server keeps capabilities"
[ "$(unit_value "$A" CapabilityBoundingSet)" = CAP_SYS_PTRACE ] || fail "agent capability set"
[ "$(unit_value "$A" AmbientCapabilities)" = CAP_SYS_PTRACE ] || fail "agent ambient set"
[ "$(unit_value "$A" PrivateUsers)" = "" ] || fail "agent must not use PrivateUsers="
[ "$(unit_value "$K" ListenStream)" = /run/warden/agent.sock ] || fail "socket path"
[ "$(unit_value "$K" SocketMode)" = 0666 ] || fail "socket mode"
[ "$(unit_value "$K" Service)" = warden-agent.service ] || fail "socket's service"

step "systemd-analyze verify"
# verify wants ExecStart= to name an executable: point it at the built daemons (a stub
# when a daemon is not built in this tree yet; the unit checks do not depend on it).
mkdir -p "$T/units" "$T/bin"
for d in server agent; do
  if [ -x "$WARDEN_BUILD_DIR/$d/warden-$d" ]; then
    ln -s "$WARDEN_BUILD_DIR/$d/warden-$d" "$T/bin/warden-$d"
  else
    echo "note: $WARDEN_BUILD_DIR/$d/warden-$d not built; verifying against a stub"
    printf '#!/bin/sh\nexit 0\n' >"$T/bin/warden-$d"
    chmod 755 "$T/bin/warden-$d"
  fi
done
bindir=$(dirname "$(unit_value "$S" ExecStart | cut -d' ' -f1)")
for u in warden-server.service warden-agent.service warden-agent.socket; do
  sed "s|^ExecStart=$bindir/|ExecStart=$T/bin/|" "$SYSTEMD_DIR/$u" >"$T/units/$u"
done
grep -q "^ExecStart=$T/bin/warden-agent " "$T/units/warden-agent.service" ||
  fail "could not retarget ExecStart"
if ! systemd-analyze verify --man=no "$T/units/warden-server.service" \
  "$T/units/warden-agent.service" "$T/units/warden-agent.socket" >"$T/verify.log" 2>&1; then
  cat "$T/verify.log"
  fail "systemd-analyze verify failed"
fi
if [ -s "$T/verify.log" ]; then
  cat "$T/verify.log"
  fail "systemd-analyze verify printed warnings"
fi
# The check itself must be able to fail: a unit with a typo is reported.
cp "$T/units/warden-server.service" "$T/units/broken.service"
echo "ProtectSystm=strict" >>"$T/units/broken.service"
systemd-analyze verify --man=no "$T/units/broken.service" >"$T/broken.log" 2>&1 || true
grep -q "Unknown key" "$T/broken.log" || fail "verify did not notice an unknown key"

step "systemd-analyze security --offline=yes"
# exposure UNIT: prints the "Overall exposure level" number.
exposure() {
  systemd-analyze security --offline=yes --no-pager "$1" 2>&1 | tee "$T/security-$(basename "$1").log" |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9]*\.[0-9]\).*/\1/p'
}
# le A B: A <= B for decimals.
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
s_level=$(exposure "$T/units/warden-server.service")
a_level=$(exposure "$T/units/warden-agent.service")
[ -n "$s_level" ] || fail "no exposure level for the server: $(tail -3 "$T"/security-warden-server.service.log)"
[ -n "$a_level" ] || fail "no exposure level for the agent"
echo "exposure: warden-server $s_level (max $SERVER_MAX), warden-agent $a_level (max $AGENT_MAX)"
le "$s_level" "$SERVER_MAX" || fail "warden-server exposure $s_level > $SERVER_MAX"
le "$a_level" "$AGENT_MAX" || fail "warden-agent exposure $a_level > $AGENT_MAX"
# A bare service rates far worse (the parse and compare really bite).
printf '[Service]\nExecStart=%s/bin/warden-server\n' "$T" >"$T/units/bare.service"
bare=$(exposure "$T/units/bare.service")
if [ -z "$bare" ] || le "$bare" "$AGENT_MAX"; then fail "bare unit rated '$bare'"; fi

step "sysusers.d and tmpfiles.d entries on a scratch root"
R="$T/root"
mkdir -p "$R/etc"
systemd-sysusers --root="$R" "$WARDEN_SOURCE_DIR/systemd/warden.sysusers" >"$T/sysusers.log" 2>&1 ||
  fail "systemd-sysusers: $(cat "$T/sysusers.log")"
grep -q '^warden:x:[0-9]*:[0-9]*:Warden SPIFFE daemons:/var/lib/warden:' "$R/etc/passwd" ||
  fail "no warden user in $(cat "$R/etc/passwd")"
grep -q '^warden:x:[0-9]*:' "$R/etc/group" || fail "no warden group"
wuid=$(awk -F: '$1 == "warden" { print $3 }' "$R/etc/passwd")
if [ "$wuid" -le 0 ] || [ "$wuid" -ge 1000 ]; then fail "warden uid $wuid is not a system uid"; fi
if [ "$(id -u)" -eq 0 ]; then
  systemd-tmpfiles --root="$R" --create "$SYSTEMD_DIR/warden.tmpfiles" >"$T/tmpfiles.log" 2>&1 ||
    fail "systemd-tmpfiles: $(cat "$T/tmpfiles.log")"
  sysconf=$(sed -n 's|^d \(.*\)/warden 0750 root warden -$|\1|p' "$SYSTEMD_DIR/warden.tmpfiles")
  check_dir() { # PATH MODE UID
    [ "$(stat -c '%a %u' "$R$1")" = "$2 $3" ] || fail "$1: $(stat -c '%a %u' "$R$1"), want $2 $3"
  }
  check_dir /run/warden 755 "$wuid"
  check_dir /var/lib/warden/server 700 "$wuid"
  check_dir /var/lib/warden/agent 700 "$wuid"
  check_dir /var/lib/warden 755 0
  check_dir "$sysconf/warden" 750 0
else
  echo "note: not root, systemd-tmpfiles --create (chown) skipped"
fi

step "CAP_SYS_PTRACE is what an unprivileged agent needs to attest other users"
# What the agent reads per caller: status/stat/cgroup are world-readable; exe (path and
# hash) needs the ptrace read check, which only CAP_SYS_PTRACE passes for another uid.
sleep 60 &
victim=$!
PIDS+=("$victim")
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
with_ptrace() { as_nobody --inh-caps=+sys_ptrace --ambient-caps=+sys_ptrace "$@"; }
if [ "$(id -u)" -ne 0 ] || ! with_ptrace true 2>/dev/null; then
  echo "note: cannot grant CAP_SYS_PTRACE here (not root or not in the bounding set), skipped"
else
  for f in status stat cgroup; do
    as_nobody cat "/proc/$victim/$f" >/dev/null || fail "/proc/<pid>/$f unreadable without caps"
  done
  if as_nobody readlink "/proc/$victim/exe" >/dev/null 2>&1; then
    fail "another user's /proc/<pid>/exe was readable without a capability"
  fi
  [ "$(with_ptrace readlink "/proc/$victim/exe")" = "$(readlink "/proc/$victim/exe")" ] ||
    fail "CAP_SYS_PTRACE did not give the exe path"
  want=$(sha256sum <"/proc/$victim/exe" | cut -d' ' -f1)
  got=$(with_ptrace sh -c "sha256sum </proc/$victim/exe" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "CAP_SYS_PTRACE did not allow hashing the executable"
fi
kill "$victim" 2>/dev/null || true

step "cmake --install stages binaries, units and configs"
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$WARDEN_BUILD_DIR/CMakeCache.txt")
D="$T/dest"
DESTDIR="$D" cmake --install "$WARDEN_BUILD_DIR" >"$T/install.log" 2>&1 ||
  fail "cmake --install: $(tail -5 "$T/install.log")"
for f in lib/systemd/system/warden-server.service lib/systemd/system/warden-agent.service \
  lib/systemd/system/warden-agent.socket lib/sysusers.d/warden.conf lib/tmpfiles.d/warden.conf \
  share/doc/warden/examples/server.conf.example; do
  [ -f "$D$prefix/$f" ] || fail "not installed: $prefix/$f"
done
for d in server agent; do
  exe=$(unit_value "$D$prefix/lib/systemd/system/warden-$d.service" ExecStart | cut -d' ' -f1)
  [ "$exe" = "$prefix/bin/warden-$d" ] || fail "ExecStart $exe is not under $prefix"
  if [ -x "$WARDEN_BUILD_DIR/$d/warden-$d" ]; then
    [ -x "$D$exe" ] || fail "$exe was built but not installed"
  fi
done
cmp -s "$D$prefix/lib/sysusers.d/warden.conf" "$WARDEN_SOURCE_DIR/systemd/warden.sysusers" ||
  fail "installed sysusers file differs"

step "scripts/install.sh -n names the same paths"
"$WARDEN_SOURCE_DIR/scripts/install.sh" -b "$WARDEN_BUILD_DIR" -n >"$T/install-sh.log" 2>&1 ||
  fail "install.sh -n: $(cat "$T/install-sh.log")"
for want in "+ cmake --install $WARDEN_BUILD_DIR" \
  "+ systemd-sysusers $prefix/lib/sysusers.d/warden.conf" \
  "+ systemd-tmpfiles --create $prefix/lib/tmpfiles.d/warden.conf" \
  "+ systemctl enable warden-server.service warden-agent.socket warden-agent.service"; do
  grep -qxF "$want" "$T/install-sh.log" || fail "install.sh -n lacks: $want"
done

pass
