#!/usr/bin/env bash
# The long simulation sweep: SEEDS seeds (default 10,000) in chunks of CHUNK, each chunk a
# fresh tally-sim process, JOBS chunks at a time (default: every core).
#
# Why chunks of processes rather than one process with threads: a simulated world is not
# entirely freed when its run ends (about 2 MB per seed stays allocated), so one process
# sweeping 10,000 seeds would need over 20 GB. A chunk of 250 seeds stays under 1 GB.
#
# Prints every failure with its replay command, then seeds per second and the simulated-to-
# real time ratio over the whole sweep; exits non-zero if any seed failed.
set -euo pipefail

TALLY_SIM=${TALLY_SIM:-target/sim/sim/tally-sim}
SEEDS=${SEEDS:-10000}
CHUNK=${CHUNK:-250}
JOBS=${JOBS:-$(nproc)}
SIM_ARGS=${SIM_ARGS:-}
LOG_DIR=${LOG_DIR:-target/sim/sim-long}

rm -rf "$LOG_DIR" && mkdir -p "$LOG_DIR"
started=$(date +%s.%N)
# shellcheck disable=SC2086 # SIM_ARGS is a list of flags
seq 0 "$CHUNK" $((SEEDS - 1)) | xargs -P "$JOBS" -I{} sh -c \
  'end=$(( {} + '"$CHUNK"' )); [ $end -gt '"$SEEDS"' ] && end='"$SEEDS"'; '"$TALLY_SIM"' --seeds {}..$end '"$SIM_ARGS"' > '"$LOG_DIR"'/chunk-{}.out 2> '"$LOG_DIR"'/chunk-{}.err' || true
finished=$(date +%s.%N)

cat "$LOG_DIR"/chunk-*.err | grep -A1 "FAILED" || true
# Each chunk's summary line: "N seeds in T s: R seeds/s, about Xx faster than real time ...; F failed"
awk -v started="$started" -v finished="$finished" -v expected="$SEEDS" '
  /seeds in/ {
    seeds += $1
    for (i = 1; i <= NF; i++) {
      if ($i == "about") { ratio = $(i + 1); sub("x", "", ratio); sim_s += ratio * $4 }
      if ($i == "failed") { failed += $(i - 1) }
    }
    chunks += 1
  }
  END {
    wall = finished - started
    printf "%d seeds in %d chunks, %.0f s wall clock: %.1f seeds/s, %.0fx faster than real time; %d failed\n",
      seeds, chunks, wall, seeds / wall, sim_s / wall, failed
    if (seeds != expected) { printf "only %d of %d seeds reported: a chunk crashed (see its .err)\n", seeds, expected; exit 1 }
    if (failed > 0) exit 1
  }' "$LOG_DIR"/chunk-*.out
