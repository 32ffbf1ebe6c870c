#!/usr/bin/env bash
# bench/stage_eval.sh — capacity_stage() over 90 days of one-minute samples
# for 30 series (3.9M rows in day partitions) and their hourly rollups; it
# includes the forecasts behind the plan decision.  Baseline: the 10 ms target.
# Median of RUNS calls in one session (after one warm-up call).
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/series_data.sh
RUNS=${1:-9}
series_cluster stage_bench "${MC_BENCH_PORT:-55447}"
rows=$(q -c "SELECT count(*) FROM capacity_sample")
time_call "capacity_stage('2030-04-01 23:59')" "$RUNS" > "$MC_RUN/stage_ms"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(q -c 'SHOW server_version'), $(date -u +%Y-%m-%d)"
echo "samples: $rows"
echo "capacity_stage(): $(cat "$MC_RUN/stage_ms") ms (median of $RUNS in one session; target 10 ms)"
