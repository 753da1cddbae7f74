#!/usr/bin/env bash
# Agent memory per authorized entry (a measurement, not a test: prints figures, exits 0).
#
# Starts a real warden-server and warden-agent (join token, SQLite, a temp dir), then
# registers entries parented to the agent in steps (bulk `entry create -data`), each
# with its own selector, and after every step waits until the agent holds a signed
# X.509-SVID for every entry (warden_agent_svid_cache_entries on /metrics) and has been
# quiet for a moment. It prints the agent's VmRSS and RssAnon (/proc/PID/status; the
# anonymous memory is mostly the malloc heaps: the main one, [heap] in
# /proc/PID/smaps, and the thread arenas) and the bytes per entry beyond the
# baseline of no entries. Each round is a fresh server and agent; the summary gives the
# median over rounds. (The server currently serves an agent at most 10000 entries: larger
# steps wait in vain.)
#
# Usage: scripts/bench-agent-memory.sh [-b DIR] [-n "1000 5000"] [-r N] [-s S] [-a FLAGS] [-x CMD]
#   -b  build directory with warden-server and warden-agent already built (default
#       build-bench, else build); this script builds nothing
#   -n  cumulative entry counts to measure at (default "1000 5000")
#   -r  rounds (default 3)
#   -s  seconds to let the agent settle after its cache is full (default 3)
#   -a  extra agent flags (e.g. "-maxEntries 10000")
#   -x  a shell command run after each measurement ($AGENT_PID, $T set; e.g. to dump
#       /proc/$AGENT_PID/smaps or attach gdb)
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=
STEPS="1000 5000"
ROUNDS=3
SETTLE=3
AGENT_FLAGS=""
HOOK=""
while getopts "b:n:r:s:a:x:h" opt; do
  case $opt in
    b) BUILD=$OPTARG ;;
    n) STEPS=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    s) SETTLE=$OPTARG ;;
    a) AGENT_FLAGS=$OPTARG ;;
    x) HOOK=$OPTARG ;;
    *) sed -n '2,22p' "$0"; exit 0 ;;
  esac
done
if [ -z "$BUILD" ]; then
  BUILD=build-bench
  [ -x "$BUILD/agent/warden-agent" ] || BUILD=build
fi
SERVER="$BUILD/server/warden-server"
AGENT="$BUILD/agent/warden-agent"
for b in "$SERVER" "$AGENT"; do
  [ -x "$b" ] || { echo "no $b: build it first (this script builds nothing)"; exit 0; }
done
PY=/usr/bin/python3

T=$(mktemp -d /tmp/wmem.XXXXXX)
chmod 755 "$T"
PIDS=()
stop_all() {
  local p
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  PIDS=()
}
cleanup() {
  stop_all
  rm -rf "$T"
}
trap cleanup EXIT

wait_for() { # wait_for SECONDS CMD...
  local end=$((SECONDS + $1))
  shift
  while [ "$SECONDS" -lt "$end" ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
metric() {
  "$PY" - "$HP" "$1" <<'EOF'
import sys, urllib.request
o = urllib.request.build_opener(urllib.request.ProxyHandler({}))
for l in o.open("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode().splitlines():
    if l.startswith(sys.argv[2] + " "):
        print(l.split()[-1]); break
EOF
}
cached_is() { [ "$(metric warden_agent_svid_cache_entries)" = "$1" ]; }
status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$AGENT_PID/status"; }
# Rss of the main malloc heap ([heap]) and of the other anonymous mappings (thread arenas,
# stacks, mmap'd chunks), in KiB.
heap_kb() {
  awk '/^[0-9a-f]+-[0-9a-f]+ / { name = (NF >= 6) ? $6 : "anon" }
       /^Rss:/ { if (name == "[heap]") h += $2; else if (name == "anon") a += $2 }
       END { print h + 0, a + 0 }' "/proc/$AGENT_PID/smaps"
}
agent_id() { wcli agent list -output json | grep -o 'spiffe://[^"]*' | head -n 1; }
has_agent() { [ -n "$(agent_id)" ]; }
wcli() { "$SERVER" "$1" "$2" -socketPath "$T/srv.sock" "${@:3}"; }

# register FROM TO: entries FROM..TO-1 for the agent, unix:uid:100000+i each, 1000 a batch.
register() {
  "$PY" - "$T" "$AID" "$1" "$2" <<'EOF'
import json, sys
t, aid, lo, hi = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for b in range(lo, hi, 1000):
    ents = [{"spiffe_id": "spiffe://bench.test/w/%d" % i, "parent_id": aid,
             "selectors": ["unix:uid:%d" % (100000 + i)]} for i in range(b, min(hi, b + 1000))]
    json.dump({"entries": ents}, open("%s/batch%d.json" % (t, b), "w"))
EOF
  local b
  for ((b = $1; b < $2; b += 1000)); do
    wcli entry create -data "$T/batch$b.json" -output json >/dev/null || return 1
  done
}

# measure N: waits for N cached SVIDs, settles, appends "round N rss anon" to results.
measure() {
  local n=$1 prev=
  wait_for $((60 + n / 20)) cached_is "$n" || {
    echo "round $round: agent has $(metric warden_agent_svid_cache_entries) SVIDs, not $n"
    return 1
  }
  # quiet: RSS stable over the settle time
  while [ "$(status_kb VmRSS)" != "$prev" ]; do
    prev=$(status_kb VmRSS)
    sleep "$SETTLE"
  done
  local heap
  heap=$(heap_kb)
  echo "$round $n $(status_kb VmRSS) $(status_kb RssAnon) $heap" >>"$T/results"
  echo "round $round: N=$n VmRSS $(status_kb VmRSS) KiB RssAnon $(status_kb RssAnon) KiB" \
    "([heap] ${heap% *} KiB, other anonymous ${heap#* } KiB)"
  if [ -n "$HOOK" ]; then eval "$HOOK"; fi
}

run_round() {
  rm -rf "$T/srv" "$T/agent" "$T"/*.sock "$T"/batch*.json
  local port
  port=$(free_port)
  HP=$(free_port)
  "$SERVER" run -trustDomain bench.test -dataDir "$T/srv" -socketPath "$T/srv.sock" \
    -serverPort "$port" -logLevel warning >"$T/server.log" 2>&1 &
  PIDS+=($!)
  wait_for 30 "$SERVER" healthcheck -socketPath "$T/srv.sock" || { cat "$T/server.log"; return 1; }
  wcli bundle show >"$T/roots.pem"
  TOK=$(wcli token generate | sed -n 's/^Token: //p')
  # shellcheck disable=SC2086
  "$AGENT" run -trustDomain bench.test -serverPort "$port" -dataDir "$T/agent" \
    -socketPath "$T/api.sock" -joinToken "$TOK" -trustBundle "$T/roots.pem" \
    -healthAddress "127.0.0.1:$HP" -logLevel warning $AGENT_FLAGS >"$T/agent.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=($AGENT_PID)
  wait_for 30 has_agent || { cat "$T/agent.log"; return 1; }
  AID=$(agent_id)
  measure 0 || return 1
  local have=0 n
  for n in $STEPS; do
    register "$have" "$n" || { echo "registering entries failed"; return 1; }
    have=$n
    measure "$n" || return 1
  done
  stop_all
}

echo "Agent memory per entry: $(nproc) CPUs, build $BUILD, steps $STEPS, $ROUNDS round(s)"
: >"$T/results"
for round in $(seq 1 "$ROUNDS"); do
  run_round || { echo "round $round failed"; tail -n 5 "$T/agent.log"; stop_all; }
done

awk '
  function median(a, n,    i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { rss[$1, $2] = $3; anon[$1, $2] = $4; if (!($2 in seen)) { seen[$2] = 1; ns[++nn] = $2 }
    rounds[$1] = 1 }
  END {
    printf "\n%8s %12s %12s %14s %14s\n", "entries", "VmRSS KiB", "RssAnon KiB", "B/entry (RSS)",
           "B/entry (anon)"
    for (i = 1; i <= nn; i++) {
      n = ns[i]; k = 0; delete a; delete b; delete pa; delete pb
      for (r in rounds) if (((r, n) in rss) && ((r, 0) in rss)) {
        k++; a[k] = rss[r, n]; b[k] = anon[r, n]
        if (n > 0) { pa[k] = (rss[r, n] - rss[r, 0]) * 1024 / n; pb[k] = (anon[r, n] - anon[r, 0]) * 1024 / n }
      }
      if (k == 0) continue
      if (n == 0) printf "%8d %12d %12d %14s %14s\n", n, median(a, k), median(b, k), "-", "-"
      else printf "%8d %12d %12d %14d %14d\n", n, median(a, k), median(b, k), median(pa, k), median(pb, k)
    }
    print "(medians over the rounds; bytes per entry beyond the agent with no entries)"
  }' "$T/results"
exit 0
