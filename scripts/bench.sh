#!/usr/bin/env bash
# Workload API benchmark (a measurement, not a test).
#
# Starts wapi_testserver (the real Workload API server fed by the test fixture: real
# X.509-SVIDs from a test CA, JWT-SVIDs from a cache) plus a no-op gRPC method on a
# second Unix socket served the same way, then drives both with wapi_bench from 1 and 8
# concurrent client processes: FetchJWTSVID (cached token), FetchX509SVID up to the
# first message, and the no-op unary call. Every line reports throughput, client-seen
# latency (p50/p99) and server CPU per call, and the ratio to the no-op call measured
# in the same run.
#
# Usage: scripts/bench.sh [-t SECONDS] [-m "workers inline owner"] [-b BUILD_DIR]
#   -t  seconds per measurement (default 3)
#   -m  handler modes to compare (default: the built-in default mode only)
#   -b  build directory (default build-bench; configured as RelWithDebInfo without
#       sanitizers if it does not exist yet)
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER=3
MODES=default
BUILD=build-bench
while getopts "t:m:b:h" opt; do
  case $opt in
    t) SECONDS_PER=$OPTARG ;;
    m) MODES=$OPTARG ;;
    b) BUILD=$OPTARG ;;
    *) sed -n '2,19p' "$0"; exit 2 ;;
  esac
done

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD" -j2 --target wapi_testserver wapi_bench >/dev/null
SERVER="$BUILD/tests/unit/workload_api/wapi_testserver"
BENCH="$BUILD/tests/unit/workload_api/wapi_bench"

T=$(mktemp -d /tmp/wbench.XXXXXX)
SRV=
cleanup() {
  [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT

echo "Workload API benchmark: $(nproc) CPUs shared by clients and server, ${SECONDS_PER}s per line"
echo "(calls/s = all clients together; latency as seen by one client; server CPU = utime+stime"
echo " of the server process per call; 'x no-op' = no-op calls/s divided by this line's)"

for mode in $MODES; do
  margs=()
  [ "$mode" != default ] && margs=(-m "$mode")
  rm -f "$T/wl.sock" "$T/noop.sock"
  WARDEN_LOG_LEVEL=warning "$SERVER" -s "$T/wl.sock" -n "$T/noop.sock" -c "${margs[@]}" \
    >"$T/server.log" 2>&1 &
  SRV=$!
  for _ in $(seq 1 100); do
    [ -S "$T/wl.sock" ] && [ -S "$T/noop.sock" ] && break
    sleep 0.05
  done
  [ -S "$T/noop.sock" ] || { cat "$T/server.log"; exit 1; }

  results="$T/results.$mode"
  : >"$results"
  for clients in 1 8; do
    "$BENCH" -s "$T/noop.sock" -k noop -c "$clients" -t "$SECONDS_PER" -p "$SRV" >>"$results"
    "$BENCH" -s "$T/wl.sock" -k jwt -c "$clients" -t "$SECONDS_PER" -p "$SRV" >>"$results"
    "$BENCH" -s "$T/wl.sock" -k x509 -c "$clients" -t "$SECONDS_PER" -p "$SRV" >>"$results"
  done
  kill "$SRV"
  wait "$SRV" || true
  SRV=

  echo
  echo "handler mode: $mode"
  awk '
    BEGIN {
      name["noop"] = "no-op RPC"; name["jwt"] = "FetchJWTSVID (cached)"
      name["x509"] = "FetchX509SVID (first msg)"
      printf "%-26s %7s %9s %7s %7s %8s %10s %8s %8s\n", "call", "clients", "calls/s", "p50 us",
             "p99 us", "mean us", "srv us/call", "x no-op", "errors"
    }
    {
      kind = $1; c = $2; rate = $4
      if (kind == "noop") { base[c] = rate; basecpu[c] = $8 }
      ratio = (base[c] > 0 && rate > 0) ? base[c] / rate : 0
      printf "%-26s %7d %9d %7d %7d %8d %10.1f %8.2f %8d\n", name[kind], c, rate, $5, $6, $7, $8,
             ratio, $9
    }' "$results"
done
