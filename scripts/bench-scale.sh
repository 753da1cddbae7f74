#!/usr/bin/env bash
# Scale benchmark (a measurement, not a test: it prints figures and exits 0).
#
# One real warden-server with many entries and many agents: simulated ones (sync-many
# of tests/tools/warden-test-node, one Sync stream and TCP connection each) and one real
# warden-agent. It only uses public interfaces (admin API and CLI, node API, /metrics,
# /proc), so it measures any server version the same way. In order:
#   1. A simulated agents attest (join tokens that also give them the node alias ALIAS),
#      A1 = A/10 of them connect and sync: server RSS per agent.
#   2. E/10 entries, then the rest up to E, are bulk loaded (`entry create -data`, batches
#      of the datastore's maximum, 1000): entries/s, server RSS per entry. The bulk
#      entries name 1000 parents that never connect (unaffected by every change below).
#   3. "Per-change" rounds: K single-entry creates (admin-create-loop, one admin call
#      each, PACE ms apart), each parented to one simulated agent. Measured: admin call
#      latency, time from the call's return to the message reaching that agent (negative:
#      before the call returned), bytes on all Sync streams and server CPU (all threads,
#      /proc/PID/task/*/schedstat, minus its idle rate measured just before) per change. Done at (A1 agents, E/10 entries), (A1, E) and, after the other A - A1
#      agents joined, (A, E): the ratios show whether a change costs O(1) in unaffected
#      entries and agents.
#   4. KA creates parented to ALIAS: time until all A agents have the change.
#   5. The real agent attests, then gets R entries and is restarted: time until its
#      cache holds all R X509-SVIDs (its /metrics), its RSS per entry, and the server
#      CPU per signed X509-SVID against `openssl speed ecdsap256`'s cost of one signature.
#
# Usage: scripts/bench-scale.sh [-q] [-e ENTRIES] [-a AGENTS] [-r REAL_ENTRIES]
#                               [-k CHANGES] [-b BUILD_DIR | BUILD_DIR]
#   -q  quick: 10000 entries, 100 agents (2-3 minutes)
#   -e  entries to bulk load (default 100000; BENCH_ENTRIES)
#   -a  simulated agents (default 1000; BENCH_AGENTS)
#   -r  entries of the real agent (default 1000; BENCH_REAL)
#   -k  single-entry changes per round (default 30; BENCH_CHANGES); a round starts no
#       new change after BENCH_ROUND_SECONDS (default 60), so a slow server ends in time
#   -b  build directory (default build-bench; configured RelWithDebInfo if missing)
# BENCH_KEEP=1 keeps the temp dir (logs, raw timings) for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

E=${BENCH_ENTRIES:-100000}
A=${BENCH_AGENTS:-1000}
R=${BENCH_REAL:-1000}
K=${BENCH_CHANGES:-30}
KA=${BENCH_ALIAS_CHANGES:-5}
PACE=${BENCH_PACE_MS:-300}
ALIAS_PACE=${BENCH_ALIAS_PACE_MS:-2000}
BUDGET=${BENCH_ROUND_SECONDS:-60} # a round starts no new change after this long (3 at least)
BATCH=1000 # DS_BATCH_MAX in server/ds.h: `entry create -data` takes at most this many
BUILD=build-bench
while getopts "qe:a:r:k:b:h" opt; do
  case $opt in
    q) E=10000 A=100 ;;
    e) E=$OPTARG ;;
    a) A=$OPTARG ;;
    r) R=$OPTARG ;;
    k) K=$OPTARG ;;
    b) BUILD=$OPTARG ;;
    *) sed -n '2,34p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || BUILD=$1
A1=$((A / 10 > 0 ? A / 10 : 1))
E1=$((E / 10))

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD" -j2 --target warden-server warden-agent warden-test-node >/dev/null
SERVER="$BUILD/server/warden-server"
AGENT="$BUILD/agent/warden-agent"
TNODE="$BUILD/tests/tools/warden-test-node"
PY=/usr/bin/python3
TD=bench.test
ALIAS="spiffe://$TD/bench/fleet"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
T=$(mktemp -d /tmp/wscale.XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '[%5ds] %s\n' "$SECONDS" "$*" >&2; }
die() { say "FAILED: $*"; for f in "$T"/*.log; do echo "== $f" >&2; tail -n 15 "$f" >&2; done; exit 1; }
now_ns() { local t=${EPOCHREALTIME/./}; echo $((t * 1000)); }
free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_for() { # wait_for SECONDS CMD...
  local end=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.05
  done
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# cpu_ns PID: CPU time of all the process's threads in ns (schedstat; else stat's ticks).
cpu_ns() {
  if [ -r "/proc/$1/schedstat" ]; then
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
  else
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.0f\n", ($12 + $13) * 1e9 / hz }' \
      "/proc/$1/stat"
  fi
}
# http_get PORT PATH: the body, over bash's /dev/tcp (no process start per poll).
http_get() {
  local fd
  exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&"$fd"
  sed '1,/^\r\{0,1\}$/d' <&"$fd"
  exec {fd}>&-
}
metric_sum() { # metric_sum PORT NAME: sum of all series of NAME
  http_get "$1" /metrics | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f\n", s }'
}
cache_has() { [ "$(metric_sum "$AHP" warden_agent_svid_cache_entries)" -ge "$1" ]; }

# ---- server ----
SOCK="$T/srv.sock"
SHP=$(free_port)
PORT=$(free_port)
say "starting warden-server ($E entries, $A simulated agents, 1 real agent with $R entries)"
"$SERVER" run -trustDomain "$TD" -dataDir "$T/srv" -socketPath "$SOCK" -serverPort "$PORT" \
  -healthAddress "127.0.0.1:$SHP" -logLevel warning -attestRatePerSource 0 \
  -nodeMaxUnauthPerSource 0 -nodeMaxConnections 16384 -nodeHandshakeTimeout 60s \
  -defaultX509SVIDTTL 1h >"$T/server.log" 2>&1 &
SPID=$!
PIDS+=("$SPID")
wait_for 30 "$SERVER" healthcheck -socketPath "$SOCK" || die "server did not start"
"$SERVER" bundle show -socketPath "$SOCK" >"$T/roots.pem"
sleep 1
RSS0=$(rss_kb "$SPID")

# attest_fleet NAME COUNT: COUNT simulated agents attest with tokens that give them the
# alias, logging messages to $T/NAME.sync; they connect once connect_fleet NAME is called.
attest_fleet() {
  local name=$1 n=$2 t0=$SECONDS
  "$TNODE" admin-tokens -socketPath "$SOCK" -count "$n" -alias "$ALIAS" >"$T/$name.tokens" ||
    die "admin-tokens"
  "$TNODE" sync-many -server "127.0.0.1:$PORT" -trustBundle "$T/roots.pem" \
    -tokens "$T/$name.tokens" -dir "$T/$name" -count "$n" -concurrency 8 \
    -holdUntil "$T/$name.go" >"$T/$name.sync" 2>"$T/$name.log" &
  PIDS+=($!)
  wait_for 600 test -f "$T/$name/ids" || die "fleet $name did not attest"
  say "fleet $name: $n agents attested in $((SECONDS - t0)) s"
}
connect_fleet() {
  local name=$1 t0=$SECONDS
  touch "$T/$name.go"
  wait_for 600 test -f "$T/$name/ready" || die "fleet $name did not sync"
  say "fleet $name: $(cut -d' ' -f1 "$T/$name/ready") agents synced in $((SECONDS - t0)) s"
}

# bulk_load FROM TO: entries FROM..TO-1 in batches of $BATCH; adds the seconds to LOAD_S.
LOAD_NS=0
bulk_load() {
  local from=$1 to=$2 i f t0
  mkdir -p "$T/bulk"
  for ((i = from; i < to; i += BATCH)); do
    awk -v a="$i" -v b="$((i + BATCH < to ? i + BATCH : to))" -v td="$TD" 'BEGIN {
      printf "{\"entries\": ["
      for (k = a; k < b; k++)
        printf "%s{\"spiffe_id\": \"spiffe://%s/bulk/%d\", \"parent_id\": \"spiffe://%s/warden/agent/join_token/phantom-%d\", \"selectors\": [\"unix:uid:%d\"]}",
               (k > a ? "," : ""), td, k, td, k % 1000, k
      print "]}" }' >"$T/bulk/$i.json"
  done
  t0=$(now_ns)
  for ((i = from; i < to; i += BATCH)); do
    "$SERVER" entry create -socketPath "$SOCK" -data "$T/bulk/$i.json" >/dev/null ||
      die "bulk load of $T/bulk/$i.json"
  done
  LOAD_NS=$((LOAD_NS + $(now_ns) - t0))
  rm -rf "$T/bulk"
}


# idle_cpu: the server's CPU ns per second of wall clock while nobody asks anything of it
# (subtracted from the rounds' CPU).
idle_cpu() {
  local c0 c1 w0 w1
  c0=$(cpu_ns "$SPID")
  w0=$(now_ns)
  sleep 1
  c1=$(cpu_ns "$SPID")
  w1=$(now_ns)
  echo $(((c1 - c0) * 1000000000 / (w1 - w0)))
}

# parents FLEET OFFSET: the fleet's "<index> <ID>" lines from OFFSET on, then the others
# (rounds take their agents in turn, so that each change is its agent's first or nearly).
parents() { awk -v o="$2" 'NR > o' "$T/$1/ids"; awk -v o="$2" 'NR <= o' "$T/$1/ids"; }

# round NAME PARENT COUNT PACE: COUNT creates under PARENT (an ID, or a file of parents
# to use in turn); waits until the Sync streams are quiet again; leaves $T/NAME.creates
# and the CPU/byte totals in $T/NAME.cost.
round() {
  local name=$1 parent=$2 n=$3 pace=$4 c0 c1 w0 w1 idle popt=-parentIDs
  [[ "$parent" == spiffe://* ]] && popt=-parentID
  idle=$(idle_cpu)
  c0=$(cpu_ns "$SPID")
  w0=$(now_ns)
  "$TNODE" admin-create-loop -socketPath "$SOCK" "$popt" "$parent" \
    -spiffeIDPrefix "spiffe://$TD/bench/$name" -count "$n" -intervalMs "$pace" -budget "$BUDGET" \
    >"$T/$name.creates" 2>>"$T/creates.log" || say "round $name: some creates failed"
  # Quiet: no Sync message for 1 s (bounded at 120 s).
  local end=$((SECONDS + 120)) size last=-1
  while [ "$SECONDS" -lt "$end" ]; do
    size=$(cat "$T"/*.sync | wc -c)
    [ "$size" = "$last" ] && break
    last=$size
    sleep 1
  done
  c1=$(cpu_ns "$SPID")
  w1=$(now_ns)
  n=$(wc -l <"$T/$name.creates")
  [ "$n" -gt 0 ] || die "round $name: no create succeeded"
  echo "$((c1 - c0 - idle * (w1 - w0) / 1000000000)) $n" >"$T/$name.cost"
}

# The Sync messages of all fleets in one file: "<t> <fleet>:<index> <seq> <full> <n> <del> <bytes>".
all_sync() {
  local f
  for f in "$T"/*.sync; do
    awk -v g="$(basename "$f" .sync)" '{ $2 = g ":" $2; print }' "$f"
  done
}

# round_stats NAME FLEET: per-change figures of a round; a change counts as arrived when
# the FLEET agent it was parented to got a message (or, for changes under the alias,
# every agent). Prints: lat_p50_ms lat_p99_ms arr_p50_ms arr_max_ms bytes_per_change
# cpu_ms_per_change msgs_per_change missed changes arr_from_call_start_max_ms
round_stats() {
  local name=$1 target=$2
  local cpu n
  read -r cpu n <"$T/$name.cost"
  # The round's window: from its first call on (the clocks are CLOCK_MONOTONIC); the
  # next round has not begun yet.
  all_sync | sort -n -k1,1 | awk -v target="$target" -v cpu="$cpu" -v n="$n" -v nagents="$A" -v cf="$T/$name.creates" '
    function pct(a, k, p,   i, j, t) { # sorts a[1..k]; the p-th percentile
      for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      i = int((k - 1) * p + 0.5) + 1; return k ? a[i] : 0 }
    BEGIN { while ((getline l < cf) > 0) { split(l, f, " "); m++; s[m] = f[1]; e[m] = f[2]; lat[m] = (f[2] - f[1]) / 1e6
                                            tg[m] = (f[4] == "-") ? "all" : target ":" f[4] }
            t0 = m ? s[1] : 1e300; t1 = 1e300 }
    $1 >= t0 { bytes += $7; msgs++ }
    { t[NR] = $1; who[NR] = $2 }
    END {
      for (c = 1; c <= m; c++) {
        # first message to each agent (or to target) after the call started, before the next
        lim = (c < m) ? s[c + 1] : t1; got = 0; worst = -1e18; delete seen
        for (r = 1; r <= NR; r++) {
          if (t[r] < s[c] || t[r] > lim) continue
          if (tg[c] != "all" && who[r] != tg[c]) continue
          if (who[r] in seen) continue
          seen[who[r]] = 1; got++; d = (t[r] - e[c]) / 1e6; if (d > worst) worst = d
        }
        if (got > 0 && (tg[c] != "all" || got >= nagents)) {
          k++; arr[k] = worst; d = worst + lat[c]; if (d > from_start) from_start = d
        } else miss++
      }
      for (c = 1; c <= m; c++) l2[c] = lat[c]
      if (k) { a50 = sprintf("%.1f", pct(arr, k, 0.5)); amax = sprintf("%.1f", arr[k]) }
      else { a50 = "n/a"; amax = "n/a" }
      printf "%.1f %.1f %s %s %.0f %.2f %.1f %d %d %s\n", pct(l2, m, 0.5), pct(lat, m, 0.99),
        a50, amax, bytes / n, cpu / n / 1e6, msgs / n, miss + 0, n, (k ? sprintf("%.1f", from_start) : "n/a")
    }'
}

# ---- 1. the simulated agents attest (each attestation is an alias entry, whose
# fan-out to connected agents would slow down a late attestation), A1 of them connect ----
[ "$A" -gt "$A1" ] && attest_fleet f2 $((A - A1))
attest_fleet f1 "$A1"
sleep 1
RSS_ATT=$(rss_kb "$SPID")
connect_fleet f1
sleep 1
RSS1=$(rss_kb "$SPID")

# ---- 2. entries ----
say "bulk loading $E1 entries"
bulk_load 0 "$E1"
RSS2=$(rss_kb "$SPID")
RATE1=$(awk -v e="$E1" -v ns="$LOAD_NS" 'BEGIN { printf "%.0f", (ns > 0 ? e / (ns / 1e9) : 0) }')
say "round c1: $K changes, $A1 agents, $E1 entries"
parents f1 0 >"$T/c1.parents"
round c1 "$T/c1.parents" "$K" "$PACE"
read -r L1_P50 L1_P99 D1_P50 D1_MAX B1 C1 M1 X1 N1 S1 < <(round_stats c1 f1)
say "bulk loading $((E - E1)) more entries"
bulk_load "$E1" "$E"
RSS3=$(rss_kb "$SPID")
ENTRY_RATE=$(awk -v e="$E" -v ns="$LOAD_NS" 'BEGIN { printf "%.0f", (ns > 0 ? e / (ns / 1e9) : 0) }')
# A few unmeasured changes first: the bulk load leaves SQLite's WAL checkpoint and page
# cache settling, which is not the cost of a change.
say "warm-up: 30 changes"
parents f1 $((K % A1)) >"$T/c2.parents"
round warm "$T/c2.parents" 30 "$PACE"
say "round c2: $K changes, $A1 agents, $E entries"
round c2 "$T/c2.parents" "$K" "$PACE"
read -r L2_P50 L2_P99 D2_P50 D2_MAX B2 C2 M2 X2 N2 S2 < <(round_stats c2 f1)

# ---- 3. all simulated agents ----
[ "$A" -gt "$A1" ] && connect_fleet f2
sleep 1
RSS4=$(rss_kb "$SPID")
say "round c3: $K changes, $A agents, $E entries"
parents f1 $((2 * K % A1)) >"$T/c3.parents"
round c3 "$T/c3.parents" "$K" "$PACE"
read -r L3_P50 L3_P99 D3_P50 D3_MAX B3 C3 M3 X3 N3 S3 < <(round_stats c3 f1)

# ---- 4. alias changes: every simulated agent ----
say "round alias: $KA changes reaching all $A agents"
round alias "$ALIAS" "$KA" "$ALIAS_PACE"
read -r LA_P50 LA_P99 DA_P50 DA_MAX BA CA MA XA NA SA < <(round_stats alias f1)

# ---- 5. the real agent ----
AHP=$(free_port)
TOK=$("$TNODE" admin-tokens -socketPath "$SOCK" -count 1)
start_agent() {
  "$AGENT" run -trustDomain "$TD" -serverPort "$PORT" -dataDir "$T/agent" \
    -socketPath "$T/agent.sock" -trustBundle "$T/roots.pem" -healthAddress "127.0.0.1:$AHP" \
    -logLevel warning "$@" >>"$T/agent.log" 2>&1 &
  APID=$!
  PIDS+=("$APID")
}
agent_ready() { http_get "$AHP" /ready | grep -qx ready; }
say "real agent: attest, then $R entries, restart"
start_agent -joinToken "$TOK"
wait_for 30 agent_ready || die "the real agent is not ready"
sleep 1
ARSS0=$(rss_kb "$APID")
RID=$(openssl x509 -in "$T/agent/agent_svid.pem" -noout -text 2>/dev/null |
  grep -o "URI:spiffe://[^ ,]*" | head -n 1 | cut -c5-)
[ -n "$RID" ] || die "no ID of the real agent"
kill "$APID"
wait "$APID" 2>/dev/null || true
awk -v n="$R" -v td="$TD" -v p="$RID" 'BEGIN {
  printf "{\"entries\": ["
  for (k = 0; k < n; k++)
    printf "%s{\"spiffe_id\": \"spiffe://%s/real/%d\", \"parent_id\": \"%s\", \"selectors\": [\"unix:uid:%d\"]}", (k ? "," : ""), td, k, p, 100000 + k
  print "]}" }' >"$T/real.json"
split_real() { # more than $BATCH: several files
  "$PY" - "$T/real.json" "$BATCH" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))["entries"]; b = int(sys.argv[2])
for i in range(0, len(v), b):
    json.dump({"entries": v[i:i + b]}, open("%s.%d" % (sys.argv[1], i // b), "w"))
EOF
}
split_real
for f in "$T"/real.json.*; do
  "$SERVER" entry create -socketPath "$SOCK" -data "$f" >/dev/null || die "real agent entries"
done
sleep 1
IDLE=$(idle_cpu)
SIG0=$(metric_sum "$SHP" warden_server_signings_total)
SCPU0=$(cpu_ns "$SPID")
T0=$(now_ns)
start_agent
until cache_has "$R" 2>/dev/null; do
  kill -0 "$APID" 2>/dev/null || die "the real agent exited"
  [ $(($(now_ns) - T0)) -lt 120000000000 ] || break
  sleep 0.02
done
T1=$(now_ns)
CACHE_S=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
CACHED=$(metric_sum "$AHP" warden_agent_svid_cache_entries)
sleep 2
SIG1=$(metric_sum "$SHP" warden_server_signings_total)
SCPU1=$(cpu_ns "$SPID")
T2=$(now_ns)
SCPU1=$((SCPU1 - IDLE * (T2 - T0) / 1000000000))
ARSS1=$(rss_kb "$APID")

# ---- 6. the cost of one ECDSA P-256 signature ----
say "openssl speed ecdsap256"
SPEED=$(openssl speed -seconds 2 ecdsap256 2>/dev/null | awk '/256 bits ecdsa/ && /nistp256/')
SIGN_PER_S=$(awk '{ print $(NF - 1) }' <<<"$SPEED")
VERIFY_PER_S=$(awk '{ print $NF }' <<<"$SPEED")
SIGN_US=$(awk -v s="${SIGN_PER_S:-0}" 'BEGIN { printf "%.1f", (s > 0 ? 1e6 / s : 0) }')
# Signing an SVID needs the CSR's signature checked too: one verify per SVID.
SV_US=$(awk -v s="${SIGN_PER_S:-0}" -v v="${VERIFY_PER_S:-0}" \
  'BEGIN { printf "%.1f", (s > 0 && v > 0 ? 1e6 / s + 1e6 / v : 0) }')
SIGNED=$((SIG1 - SIG0))
SRV_US=$(awk -v c="$((SCPU1 - SCPU0))" -v n="$SIGNED" 'BEGIN { printf "%.1f", (n > 0 ? c / n / 1e3 : 0) }')

# ---- the table ----
num() { awk -v x="$1" 'BEGIN { printf "%s", x + 0 }'; }
row() { # row FIGURE MEASURED GOAL MET
  printf '%-58s | %16s | %10s | %s\n' "$1" "$2" "$3" "$4"
}
le() { awk -v a="$1" -v b="$2" 'BEGIN { print ((a ~ /^-?[0-9.]+$/ && a + 0 <= b) ? "yes" : "NO") }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print ((a + 0 >= b) ? "yes" : "NO") }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
kb_per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f KiB", (n > 0 ? (b - a) / n : 0) }'; }

echo
echo "Scale benchmark: $(nproc) CPUs, server $(git describe --always --dirty 2>/dev/null || echo ?)"
echo "entries $E (rounds at $E1 and $E), simulated agents $A (rounds at $A1 and $A), real agent $R entries;"
echo "up to $K single-entry changes per round, $PACE ms apart, $KA alias changes $ALIAS_PACE ms apart"
echo "(a round starts no new change after ${BUDGET}s; see the per-round table for the counts)."
echo "latencies in ms; a change's arrival = its message at the agent minus the admin call's return."
echo
row "figure" "measured" "goal" "met?"
row "----------------------------------------------------------" "----------------" "----------" "----"
row "entries bulk loaded ($E, batches of $BATCH), entries/s" "$ENTRY_RATE" "" ""
row "  the first $E1 alone, entries/s" "$RATE1" "" ""
row "simulated agents connected (sync-only)" "$A" "1000" "$(ge "$A" 1000)"
row "entry create latency p50, $A agents" "$L3_P50" "" ""
row "entry create latency p99, $A agents" "$L3_P99" "<= 50" "$(le "$L3_P99" 50)"
row "change -> the one affected agent, p50" "$D3_P50" "" ""
row "change -> the one affected agent, max" "$D3_MAX" "<= 1000" "$(le "$D3_MAX" 1000)"
row "  the same from the call's start (sync fan-out), max" "$S3" "<= 1000" "$(le "$S3" 1000)"
row "alias change -> all $A agents, p50" "$DA_P50" "" ""
row "alias change -> all $A agents, max" "$DA_MAX" "<= 1000" "$(le "$DA_MAX" 1000)"
row "  the same from the call's start (sync fan-out), max" "$SA" "<= 1000" "$(le "$SA" 1000)"
row "Sync bytes per change, $A1 agents / $E1 entries" "$B1" "" ""
row "Sync bytes per change, $A1 agents / $E entries" "$B2" "" ""
row "Sync bytes per change, $A agents / $E entries" "$B3" "" ""
row "Sync bytes per alias change (all $A agents)" "$BA" "" ""
row "server CPU ms per change, $A1 agents / $E1 entries" "$C1" "" ""
row "server CPU ms per change, $A1 agents / $E entries" "$C2" "" ""
row "server CPU ms per change, $A agents / $E entries" "$C3" "" ""
row "server CPU ms per alias change (all $A agents)" "$CA" "" ""
R_E=$(div "$C2" "$C1")
R_A=$(div "$C3" "$C2")
row "CPU ratio x$((E / (E1 > 0 ? E1 : 1))) entries (O(1) = 1.0)" "$R_E" "<= 1.5" "$(le "$R_E" 1.5)"
row "CPU ratio x$((A / A1)) agents (O(1) = 1.0)" "$R_A" "<= 1.5" "$(le "$R_A" 1.5)"
R_BA=$(div "$B3" "$B2")
row "bytes ratio x$((A / A1)) agents (O(1) = 1.0)" "$R_BA" "<= 1.5" "$(le "$R_BA" 1.5)"
row "Sync messages per change, $A1 / $A agents" "$M2 / $M3" "1" ""
row "real agent: all $R SVIDs cached after start, s ($CACHED)" "$CACHE_S" "<= 2" "$(
  [ "$CACHED" -ge "$R" ] && le "$CACHE_S" 2 || echo NO)"
row "server RSS per agent ($A attested, 0 entries)" "$(kb_per "$RSS0" "$RSS_ATT" "$A")" "" ""
row "server RSS per connected agent (0 entries; $A1 agents)" "$(kb_per "$RSS_ATT" "$RSS1" "$A1")" "" ""
row "server RSS per connected agent ($E entries; $((A - A1)) agents)" "$(kb_per "$RSS3" "$RSS4" $((A - A1)))" "" ""
row "server RSS per entry ($E entries)" "$(kb_per "$RSS1" "$RSS3" "$E")" "" ""
row "server RSS total, MiB" "$((RSS4 / 1024))" "" ""
row "real agent RSS per entry ($R)" "$(kb_per "$ARSS0" "$ARSS1" "$R")" "" ""
row "server CPU per signed SVID, us ($SIGNED signed)" "$SRV_US" "" ""
row "openssl ecdsap256 sign, us" "$SIGN_US" "" ""
R_S=$(div "$SRV_US" "$SIGN_US")
row "server CPU per SVID / openssl sign" "$R_S" "<= 3" "$(le "$R_S" 3)"
row "openssl ecdsap256 sign + verify (the CSR), us" "$SV_US" "" ""
R_SV=$(div "$SRV_US" "$SV_US")
row "server CPU per SVID / openssl sign + verify" "$R_SV" "<= 3" "$(le "$R_SV" 3)"
echo
echo "Per round (ms; bytes and messages on all Sync streams, server CPU, per change):"
echo "(arrive: after the call returned; from start: after the call began, the worst)"
F='%-6s %6s %7s %7s %8s %8s %8s %8s %10s %9s %6s %9s %6s\n'
# shellcheck disable=SC2059
printf "$F" round agents entries changes "call p50" "call p99" "arr p50" "arr max" "from start" \
  bytes msgs "cpu ms" missed
# shellcheck disable=SC2059
printf "$F" \
  c1 "$A1" "$E1" "$N1" "$L1_P50" "$L1_P99" "$D1_P50" "$D1_MAX" "$S1" "$B1" "$M1" "$C1" "$X1" \
  c2 "$A1" "$E" "$N2" "$L2_P50" "$L2_P99" "$D2_P50" "$D2_MAX" "$S2" "$B2" "$M2" "$C2" "$X2" \
  c3 "$A" "$E" "$N3" "$L3_P50" "$L3_P99" "$D3_P50" "$D3_MAX" "$S3" "$B3" "$M3" "$C3" "$X3" \
  alias "$A" "$E" "$NA" "$LA_P50" "$LA_P99" "$DA_P50" "$DA_MAX" "$SA" "$BA" "$MA" "$CA" "$XA"
echo "(RSS2 after $E1 entries: $((RSS2 / 1024)) MiB; $((${SECONDS})) s in all)"
exit 0
