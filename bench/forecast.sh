#!/usr/bin/env bash
# bench/forecast.sh — capacity_forecast() over 90 days of one-minute samples
# for 30 series and their hourly rollups (30-day lookback).  Baselines: the
# 50 ms target, and plain PostgreSQL's least-squares regr_slope() over the
# same daily rollups (one line per series: no band, no method choice, no
# trigger semantics).
# Median of RUNS calls in one session (after one warm-up call).
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/series_data.sh
RUNS=${1:-9}
series_cluster forecast_bench "${MC_BENCH_PORT:-55449}"
q -c "CREATE FUNCTION plain_slopes(as_of timestamptz) RETURNS TABLE(indicator text, labels jsonb, slope float8)
      LANGUAGE sql STABLE AS \$\$
      SELECT d.indicator, d.labels, regr_slope(d.avg, extract(epoch FROM d.day)::float8 / 86400)
        FROM capacity_sample_daily d
       WHERE d.day >= date_bin('1 day', as_of, '2000-01-01') - interval '30 days'
         AND d.day < date_bin('1 day', as_of, '2000-01-01')
       GROUP BY 1, 2 \$\$"
hourly=$(q -c "SELECT count(*) FROM capacity_sample_hourly")
rows=$(q -c "SELECT count(*) FROM capacity_forecast('2030-04-01 23:59')")
ours=$(time_call "capacity_forecast('2030-04-01 23:59')" "$RUNS")
plain=$(time_call "plain_slopes('2030-04-01 23:59')" "$RUNS")
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(q -c 'SHOW server_version'), $(date -u +%Y-%m-%d)"
echo "hourly rollups: $hourly; forecast rows: $rows"
q -c "SELECT status, count(*) FROM capacity_forecast('2030-04-01 23:59') GROUP BY 1 ORDER BY 1" | sed 's/^/  /'
echo "capacity_forecast(): $ours ms (median of $RUNS in one session; target 50 ms)"
echo "plain regr_slope() over the same daily points: $plain ms"
awk -v a="$ours" -v b="$plain" -v t=50 'BEGIN { printf "ratio to target: %.2f; ratio to plain least squares: %.1fx\n", a / t, a / b }'
