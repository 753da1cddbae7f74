#!/usr/bin/env bash
# X.509-SVID signing benchmark (a measurement, not a test), against the REAL server.
#
# Starts warden-server (SQLite in a temp dir, -logLevel warning), attests one node
# with a join token, creates one entry for it and has the test node client
# (warden-test-node sign-loop) request CALLS batches of BATCH CSRs, from CLIENTS
# client processes at once. The server's CPU time (utime + stime from /proc/PID/stat,
# all its threads) over the signing, divided by the SVIDs signed, is the cost per SVID.
# The baseline is `openssl speed -seconds 2 ecdsap256` on the same machine: its sign
# and verify rates give the cost of one ECDSA P-256 signature and one verification
# (every SVID needs one of each: the CSR's signature is verified, the SVID signed).
# Prints one line per round and the medians, with the ratios; exits 0.
#
# Usage: scripts/bench-signing.sh [-b BUILD_DIR] [-n BATCH] [-c CALLS] [-p CLIENTS]
#                                 [-r ROUNDS] [-s SIGNING_THREADS] [-x SERVER_BINARY]
#   -b  build directory (default build)       -n  CSRs per call (default 100)
#   -c  calls per client per round (def. 20)  -p  client processes (default 2)
#   -r  rounds (default 5)                    -s  -signingThreads (default: server's)
#   -x  another warden-server to measure (an older build), with BUILD_DIR's client
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build
BATCH=100
CALLS=20
CLIENTS=2
ROUNDS=5
THREADS=
SERVER=
while getopts "b:n:c:p:r:s:x:h" opt; do
  case $opt in
    b) BUILD=$OPTARG ;;
    n) BATCH=$OPTARG ;;
    c) CALLS=$OPTARG ;;
    p) CLIENTS=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    s) THREADS=$OPTARG ;;
    x) SERVER=$OPTARG ;;
    *) sed -n '2,19p' "$0"; exit 2 ;;
  esac
done

SERVER=${SERVER:-$BUILD/server/warden-server}
NODE="$BUILD/tests/tools/warden-test-node"
[ -x "$SERVER" ] && [ -x "$NODE" ] || { echo "build $BUILD first (warden-server, warden-test-node)" >&2; exit 1; }

T=$(mktemp -d /tmp/sbench.XXXXXX)
SPID=
cleanup() {
  if [ -n "$SPID" ]; then kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; fi
  rm -rf "$T"
}
trap cleanup EXIT

CLK=$(getconf CLK_TCK)
# cpu_ticks PID: utime + stime of the process (every thread), in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# openssl: microseconds per P-256 sign and verify (from the last "sign/s verify/s" line).
read -r SIGN_US VERIFY_US < <(openssl speed -seconds 2 ecdsap256 2>/dev/null |
  awk '/256 bits ecdsa/ { s = $(NF - 1); v = $NF } END { printf "%.2f %.2f\n", 1e6 / s, 1e6 / v }')

FLAGS=(-trustDomain example.org -dataDir "$T/data" -socketPath "$T/s.sock" -serverPort 0
  -logLevel warning -attestRatePerSource 0)
[ -n "$THREADS" ] && FLAGS+=(-signingThreads "$THREADS")
"$SERVER" run "${FLAGS[@]}" >"$T/server.log" 2>&1 &
SPID=$!
for _ in $(seq 1 200); do
  "$SERVER" healthcheck -socketPath "$T/s.sock" >/dev/null 2>&1 && break
  kill -0 "$SPID" 2>/dev/null || { cat "$T/server.log" >&2; exit 1; }
  sleep 0.05
done
PORT=$(ss -ltnpH 2>/dev/null | awk -v p="pid=$SPID," 'index($0, p) { n = split($4, a, ":"); print a[n]; exit }')
[ -n "$PORT" ] || { echo "cannot find the server's port" >&2; exit 1; }
cli() { "$SERVER" "$1" "$2" -socketPath "$T/s.sock" "${@:3}"; }

cli bundle show >"$T/roots.pem"
TOK=$(cli token generate | sed -n 's/^Token: //p')
"$NODE" attest-join -server "127.0.0.1:$PORT" -trustBundle "$T/roots.pem" -token "$TOK" \
  -dir "$T/node" >/dev/null
AGENT="spiffe://example.org/warden/agent/join_token/$TOK"
ENTRY=$(cli entry create -spiffeID spiffe://example.org/bench/w -parentID "$AGENT" \
  -selector unix:uid:0 | sed -n 's/^Entry ID *: *//p')

run_round() {
  local pids=() p
  for _ in $(seq 1 "$CLIENTS"); do
    "$NODE" sign-loop -server "127.0.0.1:$PORT" -dir "$T/node" -entry "$ENTRY" \
      -batch "$BATCH" -count "$CALLS" >/dev/null &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { echo "sign-loop failed" >&2; exit 1; }; done
}

run_round # warm-up
N=$((BATCH * CALLS * CLIENTS))
printf 'openssl speed ecdsap256: sign %.1f us, verify %.1f us\n' "$SIGN_US" "$VERIFY_US"
printf 'server: %s SVIDs per round (%s clients x %s calls x %s CSRs), -signingThreads %s\n' \
  "$N" "$CLIENTS" "$CALLS" "$BATCH" "${THREADS:-default}"
: >"$T/us"
: >"$T/rate"
for i in $(seq 1 "$ROUNDS"); do
  c0=$(cpu_ticks "$SPID")
  t0=$(date +%s.%N)
  run_round
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "$SPID")
  us=$(awk -v d=$((c1 - c0)) -v n="$N" -v hz="$CLK" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
  rate=$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
  echo "$us" >>"$T/us"
  echo "$rate" >>"$T/rate"
  printf 'round %d: server CPU %s us/SVID, %s SVIDs/s\n' "$i" "$us" "$rate"
done
US=$(median <"$T/us")
RATE=$(median <"$T/rate")
printf 'median: server CPU %s us/SVID, %s SVIDs/s\n' "$US" "$RATE"
awk -v u="$US" -v s="$SIGN_US" -v v="$VERIFY_US" 'BEGIN {
  printf "ratio: %.2fx openssl sign, %.2fx openssl sign+verify\n", u / s, u / (s + v) }'
exit 0
