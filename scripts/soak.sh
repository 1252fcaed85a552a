#!/usr/bin/env bash
# `make soak`: do a 3-node Tally cluster's memory and disk stay bounded under a steady stream
# of writes?
#
# 1. A fresh local 3-node cluster in $RUN_DIR, started as scripts/run-local-cluster.sh does
#    but on other ports (7301-7303 for clients, 7401-7403 for Raft, 9301-9303 for metrics), so
#    that it runs beside a dev cluster (`make run`) and `make bench`.
# 2. `tally bench` against node 1 for DURATION_S: write-only, VALUE_BYTES values, CLIENTS
#    connections, keys chosen uniformly from KEYSPACE (10,000 x 4 KB: a working set of about
#    40 MB, so a bounded node ends near that, plus its log between snapshots).
# 3. Every SAMPLE_S, one row of $OUT (TSV, also printed): elapsed seconds, then for each node
#    its RSS (VmRSS) in MB, its data directory in MB (`du -sm`), and its number of WAL segment
#    files (wal/) and snapshot files (snapshots/); `-` where that directory does not exist.
# 4. The bench summary, then each node's RSS and data size at 25%, 50%, 75% and 100% of the
#    run and their growth over the second half: near zero when they are bounded.
#
# The run stops early, and fails, if a node exits, or if free memory or free disk space under
# $RUN_DIR falls below MIN_FREE_MEM_MB / MIN_FREE_DISK_MB: without log compaction a node
# keeps every write, in memory and on disk.
#
# Knobs: TALLY (target/release/tally), RUN_DIR (a fresh mktemp -d, removed after a run that
# succeeds), DURATION_S (600), SAMPLE_S (10), CLIENTS (64), KEYSPACE (10000), VALUE_BYTES
# (4096), OUT (run/soak.tsv), SERVER_FLAGS (more flags for every `tally server`, e.g. snapshot
# thresholds), CLIENT_PORT_BASE (7300), RAFT_PORT_BASE (7400), METRICS_PORT_BASE (9300),
# MIN_FREE_MEM_MB (1024), MIN_FREE_DISK_MB (2048).
set -euo pipefail

TALLY=${TALLY:-target/release/tally}
DURATION_S=${DURATION_S:-600}
SAMPLE_S=${SAMPLE_S:-10}
CLIENTS=${CLIENTS:-64}
KEYSPACE=${KEYSPACE:-10000}
VALUE_BYTES=${VALUE_BYTES:-4096}
OUT=${OUT:-run/soak.tsv}
SERVER_FLAGS=${SERVER_FLAGS:-}
CLIENT_PORT_BASE=${CLIENT_PORT_BASE:-7300}
RAFT_PORT_BASE=${RAFT_PORT_BASE:-7400}
METRICS_PORT_BASE=${METRICS_PORT_BASE:-9300}
MIN_FREE_MEM_MB=${MIN_FREE_MEM_MB:-1024}
MIN_FREE_DISK_MB=${MIN_FREE_DISK_MB:-2048}
NODES=(1 2 3)

made_run_dir=""
if [ -z "${RUN_DIR:-}" ]; then
  RUN_DIR=$(mktemp -d /tmp/tally-soak.XXXXXX)
  made_run_dir=yes
fi
for id in "${NODES[@]}"; do
  if [ -e "$RUN_DIR/node$id" ]; then
    echo "soak: $RUN_DIR/node$id exists; a soak needs a fresh cluster (give another RUN_DIR)" >&2
    exit 1
  fi
done
mkdir -p "$RUN_DIR" "$(dirname "$OUT")"
# Word-split on purpose: SERVER_FLAGS is a list of flags.
read -r -a server_flags <<< "$SERVER_FLAGS"

peers=""
for id in "${NODES[@]}"; do
  peers+="${peers:+,}$id=127.0.0.1:$((RAFT_PORT_BASE + id))"
done

pids=()
bench_pid=""
failed=""
stopped=""
# Stops the bench, then the nodes (SIGTERM; SIGKILL after 10 s); safe to call twice.
stop_all() {
  [ -n "$stopped" ] && return 0
  stopped=yes
  if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
cleanup() {
  local status=$?
  stop_all
  if [ "$status" -ne 0 ] || [ -n "$failed" ] || [ -z "$made_run_dir" ]; then
    echo "soak: data and logs are kept in $RUN_DIR"
  else
    rm -rf "$RUN_DIR"
  fi
}
trap cleanup EXIT
trap 'echo; echo "soak: interrupted"; failed=yes; stop_all; verdict; exit 130' INT TERM

# Prints the last lines of node $1's log, on stderr.
show_log() {
  echo "node $1's log ($RUN_DIR/node$1.log) ends with:" >&2
  tail -n 20 "$RUN_DIR/node$1.log" >&2
}

# Fails, naming the node, if a node has exited.
check_nodes_alive() {
  for id in "${NODES[@]}"; do
    if ! kill -0 "${pids[$((id - 1))]}" 2>/dev/null; then
      echo "soak: node $id exited" >&2
      show_log "$id"
      return 1
    fi
  done
}

# The number of files in directory $1, or `-` if there is no such directory.
count_files() {
  if [ -d "$1" ]; then
    { find "$1" -maxdepth 1 -type f 2>/dev/null || true; } | wc -l
  else
    echo -
  fi
}

# One TSV row: elapsed seconds, then per node RSS MB, data MB, WAL files, snapshot files.
sample() {
  local row=$1
  for id in "${NODES[@]}"; do
    local pid=${pids[$((id - 1))]} data="$RUN_DIR/node$id" rss_mb data_mb
    rss_mb=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status" 2>/dev/null || true)
    # Files may disappear while du walks the directory (segments removed after a snapshot).
    data_mb=$({ du -sm "$data" 2>/dev/null || true; } | cut -f1)
    row+=$'\t'"${rss_mb:--}"$'\t'"${data_mb:--}"
    row+=$'\t'"$(count_files "$data/wal")"$'\t'"$(count_files "$data/snapshots")"
  done
  echo "$row" | tee -a "$OUT"
}

# Why the run must stop now, if it must: too little memory or disk left.
resources_short() {
  local mem_mb disk_mb
  mem_mb=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
  disk_mb=$(df -Pm "$RUN_DIR" | awk 'NR == 2 {print $4}')
  if [ "$mem_mb" -lt "$MIN_FREE_MEM_MB" ]; then
    echo "only $mem_mb MB of memory available (MIN_FREE_MEM_MB=$MIN_FREE_MEM_MB)"
  elif [ "$disk_mb" -lt "$MIN_FREE_DISK_MB" ]; then
    echo "only $disk_mb MB free on the disk of $RUN_DIR (MIN_FREE_DISK_MB=$MIN_FREE_DISK_MB)"
  fi
}

# Each node's RSS and data size at 25/50/75/100% of the samples in $OUT (the row nearest
# each fraction of the last elapsed time), and the growth over the second half.
verdict() {
  [ -f "$OUT" ] || return 0
  awk -F '\t' -v nodes="${#NODES[@]}" '
    NR == 1 { next }
    { n++; t[n] = $1; for (i = 2; i <= NF; i++) v[n, i] = $i }
    END {
      if (n < 2) { print "soak: too few samples for a verdict"; exit }
      split("0.25 0.5 0.75 1", fraction, " ")
      for (f = 1; f <= 4; f++) {
        best = 1
        for (r = 1; r <= n; r++) {
          d = t[r] - fraction[f] * t[n]; if (d < 0) d = -d
          e = t[best] - fraction[f] * t[n]; if (e < 0) e = -e
          if (d <= e) best = r  # ties: the later row, so 100% is the last sample
        }
        at[f] = best
      }
      printf "\nverdict: MB at 25%%, 50%%, 75%%, 100%% of the run; growth = 100%% - 50%%\n"
      printf "%-5s %-8s %10s %10s %10s %10s %12s\n", "node", "metric",
        t[at[1]] "s", t[at[2]] "s", t[at[3]] "s", t[at[4]] "s", "growth"
      for (node = 1; node <= nodes; node++) {
        for (m = 0; m <= 1; m++) {
          col = 2 + 4 * (node - 1) + m
          printf "%-5s %-8s", node, (m == 0 ? "rss_mb" : "data_mb")
          for (f = 1; f <= 4; f++) printf " %10s", v[at[f], col]
          printf " %+12.1f\n", v[at[4], col] - v[at[2], col]
        }
      }
    }' "$OUT"
}

echo "soak: starting a fresh 3-node Tally cluster in $RUN_DIR (client ports $((CLIENT_PORT_BASE + 1))-$((CLIENT_PORT_BASE + 3)))"
for id in "${NODES[@]}"; do
  "$TALLY" server --id "$id" \
    --listen "127.0.0.1:$((CLIENT_PORT_BASE + id))" \
    --peers "$peers" \
    --data "$RUN_DIR/node$id" \
    --metrics-listen "127.0.0.1:$((METRICS_PORT_BASE + id))" \
    ${server_flags[@]+"${server_flags[@]}"} \
    > "$RUN_DIR/node$id.log" 2>&1 &
  pids+=($!)
done

# Wait until some node is leader and node 1, which the bench loads, knows it.
leader=""
for _ in $(seq 1 200); do
  check_nodes_alive || { failed=yes; exit 1; }
  if grep -q "role=Leader" "$RUN_DIR"/node*.log 2>/dev/null && grep -q "leader=Some" "$RUN_DIR/node1.log"; then
    leader=yes
    break
  fi
  sleep 0.1
done
if [ -z "$leader" ]; then
  echo "soak: no leader after 20 s" >&2
  for id in "${NODES[@]}"; do show_log "$id"; done
  failed=yes
  exit 1
fi

echo "soak: ${DURATION_S} s of write-only load: $CLIENTS clients, $VALUE_BYTES-byte values, $KEYSPACE keys, against node 1"
columns="elapsed_s"
for id in "${NODES[@]}"; do
  columns+=$'\t'"node${id}_rss_mb"$'\t'"node${id}_data_mb"$'\t'"node${id}_wal_files"$'\t'"node${id}_snapshot_files"
done
echo "$columns" | tee "$OUT"

start=$(date +%s)
"$TALLY" bench --address "127.0.0.1:$((CLIENT_PORT_BASE + 1))" \
  --clients "$CLIENTS" --read-ratio 0 --keys "$KEYSPACE" --value-size-bytes "$VALUE_BYTES" \
  --duration-s "$DURATION_S" --warmup-s 0 --no-populate --label soak \
  > "$RUN_DIR/bench.txt" 2> "$RUN_DIR/bench.log" &
bench_pid=$!
sample 0

next=$((start + SAMPLE_S))
short=""
while kill -0 "$bench_pid" 2>/dev/null; do
  while [ "$(date +%s)" -lt "$next" ] && kill -0 "$bench_pid" 2>/dev/null; do sleep 0.2; done
  kill -0 "$bench_pid" 2>/dev/null || break
  check_nodes_alive || { failed=yes; verdict; exit 1; }
  # The last row is taken after the bench ends.
  [ $(($(date +%s) - start)) -ge "$DURATION_S" ] && break
  sample $(($(date +%s) - start))
  next=$((next + SAMPLE_S))
  short=$(resources_short)
  if [ -n "$short" ]; then
    echo "soak: stopping early: $short" >&2
    failed=yes
    kill -TERM "$bench_pid" 2>/dev/null || true
    break
  fi
done
bench_status=0
wait "$bench_pid" || bench_status=$?
check_nodes_alive || failed=yes
sample $(($(date +%s) - start))

echo
echo "soak: bench summary (exit status $bench_status)"
if [ -s "$RUN_DIR/bench.txt" ]; then cat "$RUN_DIR/bench.txt"; else echo "(none: the bench was stopped before it ended)"; fi
if [ "$bench_status" -ne 0 ]; then tail -n 5 "$RUN_DIR/bench.log"; fi
verdict
echo "soak: samples in $OUT"
stop_all
if [ -n "$failed" ] || [ "$bench_status" -ne 0 ]; then
  failed=yes
  exit 1
fi
