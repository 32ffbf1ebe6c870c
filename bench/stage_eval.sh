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
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(q -c 'SHOW server_version'), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
echo "samples: $rows"
echo "capacity_stage(): $(cat "$MC_RUN/stage_ms") ms (median of $RUNS in one session; target 10 ms)"

# Plans (issue 14): capacity_stage(plan => ...) for each preset over the
# same data, plus 14 days of one-minute samples of the pushed indicators
# the presets read (loaded after the six-stage figure above, so it is
# unchanged).
if [ -z "${MC_BENCH_NO_PLANS:-}" ]; then
    for p in tiers-abc evidence-gates control-plane tenant-archetypes; do
        q -c "SELECT capacity_plan_install('$p')" >/dev/null
    done
    q <<'SQL' >/dev/null
INSERT INTO capacity_sample (indicator, labels, sampled_at, value)
SELECT i, l::jsonb, t, v * (1 + 0.05 * sin(extract(epoch FROM t) / 3600))
  FROM (VALUES ('recall_p95_ms', '{}', 600.0), ('write_latency_p95_ms', '{}', 120.0), ('tenant_top_write_qps', '{}', 200.0),
               ('tenant_top_growth_share', '{}', 0.2), ('endpoint_p95_ms', '{"endpoint": "/v1/messages"}', 180.0),
               ('endpoint_p95_ms', '{"endpoint": "/v1/search"}', 90.0), ('statement_top_share', '{}', 0.3),
               ('messages_per_second', '{}', 800.0), ('event_append_per_second', '{}', 300.0),
               ('projection_lag_seconds', '{}', 1.0), ('cluster_node_count', '{}', 20.0), ('pool_budget_percent', '{}', 70.0),
               ('table_rows_deleted', '{"table": "public.\"Event\""}', 100.0)) f(i, l, v),
       generate_series(timestamptz '2030-03-18 23:59', timestamptz '2030-04-01 23:59', interval '1 minute') t;
INSERT INTO capacity_latest_sample (indicator, labels, sampled_at, value)
SELECT DISTINCT ON (indicator, labels) indicator, labels, sampled_at, value FROM capacity_sample
 WHERE sampled_at > '2030-04-01 23:00' ORDER BY indicator, labels, sampled_at DESC
ON CONFLICT (indicator, labels) DO UPDATE SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value;
-- their hourly and daily rollups, as the sampler keeps them
INSERT INTO capacity_sample_hourly AS h (indicator, labels, hour, min, max, avg, last, count)
SELECT indicator, labels, date_bin('1 hour', sampled_at, TIMESTAMPTZ '2000-01-01 00:00+00'), min(value), max(value), avg(value),
       (array_agg(value ORDER BY sampled_at DESC))[1], count(*)
  FROM capacity_sample WHERE sampled_at >= '2030-03-18 23:00' GROUP BY 1, 2, 3
ON CONFLICT (indicator, labels, hour) DO UPDATE SET min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
   last = EXCLUDED.last, count = EXCLUDED.count;
SELECT capacity_roll_up_days('2030-03-18 23:00', '2030-04-01 23:59');
VACUUM (ANALYZE) capacity_sample;
VACUUM (ANALYZE) capacity_sample_hourly;
VACUUM (ANALYZE) capacity_sample_daily;
SQL
    for p in matter-six-stage tiers-abc evidence-gates control-plane tenant-archetypes; do
        n=$(q -c "SELECT count(*) FROM capacity_trigger_eval('2030-04-01 23:59', capacity_bindings(), NULLIF('$p', 'matter-six-stage'))")
        echo "capacity_stage(plan => '$p'): $(time_call "capacity_stage('2030-04-01 23:59', plan => '$p')" "$RUNS") ms ($n condition rows; median of $RUNS)"
    done
fi
