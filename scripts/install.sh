#!/usr/bin/env bash
# Installs Warden from a build directory onto this systemd host and enables its units.
#
#   scripts/install.sh [-b BUILD_DIR] [-u server|agent|all|none] [--start] [-n]
#
#   -b DIR    build directory (default: build); configure it with the prefix you want,
#             e.g. cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/usr (units name that path)
#   -u WHICH  units to enable: server (warden-server.service), agent (warden-agent.socket
#             + warden-agent.service), all (default) or none
#   --start   also start them now (needs a complete config; see below)
#   -n        dry run: print the commands instead of running them
#
# Steps: cmake --install; create the warden user (systemd-sysusers) and directories
# (systemd-tmpfiles); copy the example configs to <sysconfdir>/warden/ where no config
# exists yet (root:warden 0640); systemctl daemon-reload; enable (and start) the units.
# Edit the configs (trust domain, server address, join token) before starting.
set -euo pipefail

BUILD=build
UNITS=all
START=0
DRY=0

usage() { sed -n '2,17s/^# \{0,1\}//p' "$0"; }
die() {
  echo "install.sh: $*" >&2
  exit 1
}
run() {
  if [ "$DRY" = 1 ]; then
    echo "+ $*"
  else
    "$@"
  fi
}

while [ $# -gt 0 ]; do
  case "$1" in
    -b) BUILD=${2:?-b needs a directory}; shift 2 ;;
    -u) UNITS=${2:?-u needs server, agent, all or none}; shift 2 ;;
    --start) START=1; shift ;;
    -n) DRY=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
case "$UNITS" in server | agent | all | none) ;; *) die "-u: unknown value '$UNITS'" ;; esac

[ -f "$BUILD/CMakeCache.txt" ] || die "$BUILD is not a configured build directory"
[ -f "$BUILD/systemd/warden-server.service" ] || die "$BUILD has no configured units"
if [ "$DRY" = 0 ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (or with -n to see the steps)"
fi

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
unitdir=$(sed -n 's/^WARDEN_SYSTEMD_UNITDIR:STRING=//p' "$BUILD/CMakeCache.txt")
sysusersdir=$(sed -n 's/^WARDEN_SYSUSERSDIR:STRING=//p' "$BUILD/CMakeCache.txt")
tmpfilesdir=$(sed -n 's/^WARDEN_TMPFILESDIR:STRING=//p' "$BUILD/CMakeCache.txt")
abs() { case "$1" in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
unitdir=$(abs "${unitdir:-lib/systemd/system}")
sysusersdir=$(abs "${sysusersdir:-lib/sysusers.d}")
tmpfilesdir=$(abs "${tmpfilesdir:-lib/tmpfiles.d}")
# The config directory is the one ExecStart names (-config <sysconfdir>/warden/server.conf).
confdir=$(sed -n 's/^ExecStart=.* -config \(.*\)\/server\.conf$/\1/p' "$BUILD/systemd/warden-server.service")
[ -n "$confdir" ] || die "cannot find the config directory in warden-server.service"
docdir="$prefix/share/doc/warden/examples"

echo "Installing into $prefix (units in $unitdir, config in $confdir)"
run cmake --install "$BUILD"

run systemd-sysusers "$sysusersdir/warden.conf"
run systemd-tmpfiles --create "$tmpfilesdir/warden.conf"

# The examples cmake --install puts in $docdir, by the names in the source tree's conf/.
srcdir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt")
for example in "$srcdir"/conf/*.conf.example; do
  [ -e "$example" ] || continue
  name=$(basename "$example" .example)
  if [ -e "$confdir/$name" ]; then
    echo "Keeping existing $confdir/$name"
  else
    run install -m 0640 -o root -g warden "$docdir/$name.example" "$confdir/$name"
  fi
done

if [ "$DRY" = 0 ] && [ ! -d /run/systemd/system ]; then
  echo "systemd is not running here: files installed, units not enabled."
  exit 0
fi
run systemctl daemon-reload

units=()
case "$UNITS" in
  server) units=(warden-server.service) ;;
  agent) units=(warden-agent.socket warden-agent.service) ;;
  all) units=(warden-server.service warden-agent.socket warden-agent.service) ;;
esac
[ ${#units[@]} -gt 0 ] || exit 0
if [ "$START" = 1 ]; then
  run systemctl enable --now "${units[@]}"
else
  run systemctl enable "${units[@]}"
  echo "Enabled ${units[*]}. Edit $confdir/*.conf, then: systemctl start ${units[*]}"
fi
