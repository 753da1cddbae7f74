#!/usr/bin/env bash
# Workload API benchmark (a measurement, not a test), against the REAL agent.
#
# Starts a real warden-server and warden-agent (join token, an entry for uid 0, SQLite
# in a temp dir) and, as the baseline, noop_server: a gRPC method that does nothing,
# on the same kind of Unix socket, served by the same RPC layer in a process of its
# own. Then drives both with wapi_bench from 1 and 8 concurrent client processes:
# the no-op call, FetchJWTSVID (a cached token) and FetchX509SVID up to its first
# message. Every line reports throughput, client-seen latency (p50/p99), server CPU,
# syscalls and context switches per call (of the agent, or of noop_server for the
# baseline), and the throughput as a ratio to the no-op call of the same run
# (1.00 = as fast as a call that does nothing).
#
# Usage: scripts/bench.sh [-t SECONDS] [-r ROUNDS] [-b BUILD_DIR]
#   -t  seconds per measurement (default 3)
#   -r  rounds of the whole table (default 1), to see the spread
#   -b  build directory (default build-bench; configured as RelWithDebInfo without
#       sanitizers if it does not exist yet)
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=3
ROUNDS=1
BUILD=build-bench
while getopts "t:r:b:h" opt; do
  case $opt in
    t) SECS=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    b) BUILD=$OPTARG ;;
    *) sed -n '2,19p' "$0"; exit 2 ;;
  esac
done

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD" -j2 --target warden-server warden-agent wapi_bench noop_server >/dev/null
SERVER="$BUILD/server/warden-server"
AGENT="$BUILD/agent/warden-agent"
BENCH="$BUILD/tests/unit/workload_api/wapi_bench"
NOOP="$BUILD/tests/unit/workload_api/noop_server"
PY=/usr/bin/python3

T=$(mktemp -d /tmp/wbench.XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT

wait_for() {
  local i
  for i in $(seq 1 200); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  return 1
}

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"$SERVER" run -trustDomain bench.test -dataDir "$T/srv" -socketPath "$T/srv.sock" \
  -serverPort "$PORT" -logLevel warning >"$T/server.log" 2>&1 &
PIDS+=($!)
wait_for "$SERVER" healthcheck -socketPath "$T/srv.sock" || { cat "$T/server.log"; exit 1; }
"$SERVER" bundle show -socketPath "$T/srv.sock" >"$T/roots.pem"
TOK=$("$SERVER" token generate -socketPath "$T/srv.sock" | sed -n 's/^Token: //p')
"$AGENT" run -trustDomain bench.test -serverPort "$PORT" -dataDir "$T/agent" \
  -socketPath "$T/api.sock" -joinToken "$TOK" -trustBundle "$T/roots.pem" \
  -logLevel warning >"$T/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=($AGENT_PID)
agent_id() {
  "$SERVER" agent list -socketPath "$T/srv.sock" -output json | grep -o 'spiffe://[^"]*' | head -n 1
}
has_agent() { [ -n "$(agent_id)" ]; }
wait_for has_agent || { cat "$T/agent.log"; exit 1; }
AID=$(agent_id)
"$SERVER" entry create -socketPath "$T/srv.sock" -spiffeID spiffe://bench.test/bench \
  -parentID "$AID" -selector unix:uid:0 >/dev/null
wait_for "$AGENT" api fetch x509 -socketPath "$T/api.sock" || { cat "$T/agent.log"; exit 1; }
"$NOOP" "$T/noop.sock" >"$T/noop.log" 2>&1 &
NOOP_PID=$!
PIDS+=($NOOP_PID)
wait_for test -S "$T/noop.sock"

SYS=()
if perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then SYS=(-S); fi

echo "Workload API benchmark, the real agent: $(nproc) CPUs shared by clients, agent and server,"
echo "${SECS}s per line. calls/s = all clients together; latency as one client sees it; srv"
echo "us/call = CPU (user+sys) of the serving process per call; sys/call and cs/call = its"
echo "syscalls (perf) and context switches per call; ratio = calls/s / the no-op's calls/s."
results="$T/results"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  for clients in 1 8; do
    "$BENCH" -s "$T/noop.sock" -k noop -c "$clients" -t "$SECS" -p "$NOOP_PID" "${SYS[@]}" |
      sed "s/^/$round /" >>"$results"
    "$BENCH" -s "$T/api.sock" -k jwt -c "$clients" -t "$SECS" -p "$AGENT_PID" "${SYS[@]}" |
      sed "s/^/$round /" >>"$results"
    "$BENCH" -s "$T/api.sock" -k x509 -c "$clients" -t "$SECS" -p "$AGENT_PID" "${SYS[@]}" |
      sed "s/^/$round /" >>"$results"
  done
done

awk '
  BEGIN {
    name["noop"] = "no-op RPC (baseline)"; name["jwt"] = "FetchJWTSVID (cached)"
    name["x509"] = "FetchX509SVID (1st msg)"
    printf "%-5s %-24s %7s %9s %7s %7s %11s %8s %7s %7s %7s\n", "round", "call", "clients",
           "calls/s", "p50 us", "p99 us", "srv us/call", "sys/call", "cs/call", "ratio", "errors"
  }
  {
    round = $1; kind = $2; c = $3; rate = $5
    if (kind == "noop") base[round, c] = rate
    ratio = (base[round, c] > 0) ? rate / base[round, c] : 0
    printf "%-5d %-24s %7d %9d %7d %7d %11.1f %8.1f %7.1f %7.2f %7d\n", round, name[kind], c,
           rate, $6, $7, $9, $11, $12, ratio, $10
    if (kind != "noop") { sum[kind, c] += ratio; n[kind, c]++
      if (!((kind, c) in lo) || ratio < lo[kind, c]) lo[kind, c] = ratio
      if (!((kind, c) in hi) || ratio > hi[kind, c]) hi[kind, c] = ratio }
  }
  END {
    print ""
    for (k in sum) { split(k, p, SUBSEP)
      printf "%-24s %d client(s): ratio to the no-op call %.2f (min %.2f, max %.2f over %d rounds)\n",
             name[p[1]], p[2], sum[k] / n[k], lo[k], hi[k], n[k] }
  }' "$results"
