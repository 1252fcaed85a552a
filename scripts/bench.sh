#!/usr/bin/env bash
# `make bench`: the issue-#7 matrix, Tally against redis-server, in one run on this machine.
#
# 1. A fresh local 3-node Tally cluster (scripts/run-local-cluster.sh, fsync on), loaded by
#    `tally bench` through all three nodes: 4 KB values x clients (1, 16, 64, 256) x read
#    ratio (1.0, 0.5, 0.0), linearizable reads.
# 2. The same matrix against a local redis-server with `appendonly yes`, `appendfsync always`
#    (installed from the distribution's packages if missing), as the reference.
# 3. The table, the machine and the date go into BENCHMARKS.md between the `make bench`
#    markers; every run's JSON summary stays in $OUT_DIR. For Tally, each node's CPU time and
#    fsync count are sampled around every run, giving CPU microseconds and fsyncs per operation.
#
# Knobs: DURATION_S (10), WARMUP_S (2), CLIENTS ("1 16 64 256"), RATIOS ("1.0 0.5 0.0"),
# VALUE_SIZE_BYTES (4096), KEYS (10000), TALLY (target/release/tally), BENCHMARKS (the file).
set -euo pipefail

TALLY=${TALLY:-target/release/tally}
DURATION_S=${DURATION_S:-10}
WARMUP_S=${WARMUP_S:-2}
CLIENTS=${CLIENTS:-"1 16 64 256"}
RATIOS=${RATIOS:-"1.0 0.5 0.0"}
VALUE_SIZE_BYTES=${VALUE_SIZE_BYTES:-4096}
KEYS=${KEYS:-10000}
OUT_DIR=${OUT_DIR:-target/bench}
REDIS_PORT=${REDIS_PORT:-6399}
BENCHMARKS=${BENCHMARKS:-BENCHMARKS.md}

rm -rf "$OUT_DIR" && mkdir -p "$OUT_DIR"
cluster_dir=$(mktemp -d /tmp/tally-bench.XXXXXX)
redis_dir=$(mktemp -d /tmp/redis-bench.XXXXXX)
cluster_pid=""
redis_pid=""
cleanup() {
  [ -n "$cluster_pid" ] && kill -TERM "$cluster_pid" 2>/dev/null && wait "$cluster_pid" 2>/dev/null
  [ -n "$redis_pid" ] && kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  rm -rf "$cluster_dir" "$redis_dir"
}
trap cleanup EXIT

# For each Tally node: its process's CPU time in clock ticks and its fsync count, one line
# per node ("id ticks fsyncs"); nothing for other systems.
probe() {
  [ "$1" = tally ] || return 0
  for id in 1 2 3; do
    local pid ticks fsyncs
    pid=$(pgrep -f -- "server --id $id .*$cluster_dir/node$id" | head -1)
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    fsyncs=$(python3 -c "import urllib.request as u; print(next(l.split()[1] for l in u.urlopen('http://127.0.0.1:920$id/metrics').read().decode().splitlines() if l.startswith('tally_fsync_duration_seconds_count')))")
    echo "$id $ticks $fsyncs"
  done
}

# Runs the matrix against one system: $1 its name, the rest `tally bench` address flags. The
# keys are written once first, so that every run's GETs find values.
run_matrix() {
  local system=$1
  shift
  "$TALLY" bench "$@" --clients 16 --read-ratio 0 --keys "$KEYS" --value-size-bytes "$VALUE_SIZE_BYTES" \
    --duration-s 1 --warmup-s 0 > /dev/null
  for clients in $CLIENTS; do
    for ratio in $RATIOS; do
      local label="$system clients=$clients read_ratio=$ratio" run="$OUT_DIR/$system-c$clients-r$ratio"
      echo "bench: $label"
      probe "$system" > "$run.probe-before"
      "$TALLY" bench "$@" --clients "$clients" --read-ratio "$ratio" --no-populate \
        --value-size-bytes "$VALUE_SIZE_BYTES" --keys "$KEYS" \
        --duration-s "$DURATION_S" --warmup-s "$WARMUP_S" \
        --label "$label" --json "$run.json" > "$run.txt"
      probe "$system" > "$run.probe-after"
    done
  done
}

# Waits until `tally bench` can do a second of work against the addresses given.
wait_until_serving() {
  for _ in $(seq 1 50); do
    if "$TALLY" bench "$@" --clients 1 --keys 10 --duration-s 1 --warmup-s 0 --no-populate > /dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  echo "the servers at $* never answered" >&2
  return 1
}

echo "bench: starting a fresh 3-node Tally cluster in $cluster_dir"
RUN_DIR=$cluster_dir TALLY=$TALLY scripts/run-local-cluster.sh > "$OUT_DIR/cluster.log" 2>&1 &
cluster_pid=$!
tally_addresses=(--address 127.0.0.1:7001 --address 127.0.0.1:7002 --address 127.0.0.1:7003)
wait_until_serving "${tally_addresses[@]}"
run_matrix tally "${tally_addresses[@]}"
kill -TERM "$cluster_pid" && wait "$cluster_pid" 2>/dev/null || true
cluster_pid=""

if ! command -v redis-server > /dev/null; then
  echo "bench: installing redis-server from the distribution's packages"
  apt-get install -y redis-server > "$OUT_DIR/apt.log" 2>&1 || (apt-get update > /dev/null && apt-get install -y redis-server > "$OUT_DIR/apt.log" 2>&1)
fi
echo "bench: starting redis-server (appendonly yes, appendfsync always) on port $REDIS_PORT"
redis-server --port "$REDIS_PORT" --dir "$redis_dir" --appendonly yes --appendfsync always --save '' \
  > "$OUT_DIR/redis.log" 2>&1 &
redis_pid=$!
wait_until_serving --address "127.0.0.1:$REDIS_PORT"
run_matrix redis --address "127.0.0.1:$REDIS_PORT"
redis_version=$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')

python3 scripts/bench_table.py "$OUT_DIR" "$redis_version" "$BENCHMARKS"
echo "bench: the table is in BENCHMARKS.md; JSON summaries in $OUT_DIR"
