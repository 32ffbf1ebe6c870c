#!/usr/bin/env bash
# bench/stage_eval.sh — capacity_stage() over 90 days of one-minute samples
# for 30 series (3.9M rows in day partitions) and their hourly rollups; it
# includes the forecasts behind the plan decision.  Baseline: the 10 ms target.
# Median of RUNS calls in one session (after one warm-up call).
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
RUNS=${1:-9}
PORT=${MC_BENCH_PORT:-55447}
install_dependencies
build_and_install
mkdir -p "$MC_RUN"
cluster_start stage_bench "$PORT" "matter_capacity.sample_retention_days = 120" "shared_buffers = 512MB"
cluster_env stage_bench "$PORT"
[ -n "${MC_BENCH_KEEP:-}" ] || trap "cluster_stop stage_bench" EXIT
export PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
. bench/series_data.sh

q -c "CREATE EXTENSION matter_capacity"
load_series
rows=$(q -c "SELECT count(*) FROM capacity_sample")
time_call "capacity_stage('2030-04-01 23:59')" "$RUNS" > "$MC_RUN/stage_ms"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(q -c 'SHOW server_version'), $(date -u +%Y-%m-%d)"
echo "samples: $rows"
echo "capacity_stage(): $(cat "$MC_RUN/stage_ms") ms (median of $RUNS in one session; target 10 ms)"
