#!/usr/bin/env bash
# Starts a local 3-node Tally cluster on 127.0.0.1 and keeps it running until Ctrl-C.
# Data and logs live under $RUN_DIR (default: ./run/local); running again reuses the data.
set -euo pipefail

RUN_DIR=${RUN_DIR:-run/local}
TALLY=${TALLY:-target/release/tally}
CLIENT_PORT_BASE=${CLIENT_PORT_BASE:-7000}
RAFT_PORT_BASE=${RAFT_PORT_BASE:-7100}
METRICS_PORT_BASE=${METRICS_PORT_BASE:-9200}
NODES=(1 2 3)

peers=""
for id in "${NODES[@]}"; do
  peers+="${peers:+,}$id=127.0.0.1:$((RAFT_PORT_BASE + id))"
done

mkdir -p "$RUN_DIR"
pids=()
stop_cluster() {
  echo
  echo "stopping the cluster..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped. Data and logs are kept in $RUN_DIR"
}
trap stop_cluster EXIT
trap 'exit 0' INT TERM

for id in "${NODES[@]}"; do
  "$TALLY" server --id "$id" \
    --listen "127.0.0.1:$((CLIENT_PORT_BASE + id))" \
    --peers "$peers" \
    --data "$RUN_DIR/node$id" \
    --metrics-listen "127.0.0.1:$((METRICS_PORT_BASE + id))" \
    > "$RUN_DIR/node$id.log" 2>&1 &
  pids+=($!)
done

# Wait until some node reports a leader, so the printed instructions work at once.
for _ in $(seq 1 100); do
  for id in "${NODES[@]}"; do
    if ! kill -0 "${pids[$((id - 1))]}" 2>/dev/null; then
      echo "node $id exited; its log ($RUN_DIR/node$id.log) ends with:" >&2
      tail -n 20 "$RUN_DIR/node$id.log" >&2
      exit 1
    fi
  done
  if grep -q "role=Leader" "$RUN_DIR"/node*.log 2>/dev/null; then break; fi
  if command -v redis-cli >/dev/null && redis-cli -p $((CLIENT_PORT_BASE + 1)) info raft 2>/dev/null | grep -q 'leader_id:[1-9]'; then break; fi
  sleep 0.1
done

cat <<MSG
Tally is running: a 3-node cluster on 127.0.0.1.

  connect:   redis-cli -p $((CLIENT_PORT_BASE + 1))     (or -p $((CLIENT_PORT_BASE + 2)), -p $((CLIENT_PORT_BASE + 3)): any node answers)
  try:       put a A / set b B / range a c withkeys / del b / get b / info raft
  metrics:   curl http://127.0.0.1:$((METRICS_PORT_BASE + 1))/metrics
  data+logs: $RUN_DIR   (node1.log, node2.log, node3.log)

Press Ctrl-C to stop the cluster.
MSG
wait
