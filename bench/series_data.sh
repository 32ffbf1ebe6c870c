# bench/series_data.sh — sourced by stage_eval.sh and forecast.sh after
# scripts/lib.sh: a server with the extension (capacity_sample day
# partitions for 2030-01-01 .. 2030-04-02) and 90 days of one-minute samples
# for 30 series, slowly growing (0.3 %/day) with an hourly wobble, plus
# their hourly and daily rollups built the way the sampler builds them.
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# series_cluster NAME PORT: build, start the cluster (stopped on exit
# unless MC_BENCH_KEEP is set), create the extension and load the series
series_cluster() {
    install_dependencies
    build_and_install
    mkdir -p "$MC_RUN"
    cluster_start "$1" "$2" "matter_capacity.sample_retention_days = 120" "shared_buffers = 512MB"
    cluster_env "$1" "$2"
    [ -n "${MC_BENCH_KEEP:-}" ] || trap "cluster_stop $1" EXIT
    export PGDATABASE=postgres
    q -c "CREATE EXTENSION matter_capacity"
    load_series
}

load_series() {
    q -c "SET matter_capacity.sample_retention_days = 120" \
      -c "SELECT count(capacity_sample_now('2030-01-01'::timestamptz + d * interval '1 day')) FROM generate_series(0, 91) d" >/dev/null
    q -c "CREATE TABLE \"Event\" (id int)" -c "CREATE TABLE \"AuditEntry\" (id int)"
    echo "loading 90 days x 1440 samples x 30 series ..."
    q <<'SQL'
CREATE TEMP TABLE series(indicator text, labels jsonb, base float8);
INSERT INTO series VALUES
 ('read_qps', '{}', 300), ('write_qps', '{}', 80), ('read_latency_p99_ms', '{}', 15),
 ('write_latency_p99_ms', '{}', 40), ('cpu_utilization', '{}', 35), ('cache_hit_ratio', '{}', 0.99),
 ('table_rows', '{"table": "public.\"Event\""}', 40e6), ('table_rows', '{"table": "public.\"AuditEntry\""}', 10e6),
 ('table_rows_inserted', '{"table": "public.\"Event\""}', 40e6), ('table_rows_inserted', '{"table": "public.\"AuditEntry\""}', 10e6),
 ('region_p99_ms', '{"region": "us"}', 150), ('region_p99_ms', '{"region": "eu"}', 170), ('region_p99_ms', '{"region": "apac"}', 200),
 ('webhook_receiver_p99_ms', '{}', 900), ('webhook_deliveries_per_day', '{}', 4e5), ('webhook_queue_depth_p99', '{"endpoint": "a"}', 20),
 ('kms_calls_per_min', '{}', 1000), ('cdc_lag_p99_seconds', '{}', 0.2), ('cost_per_request', '{}', 0.0008),
 ('sandbox_live_write_ratio', '{"org": "o1"}', 3), ('mcp_tool_calls_per_min', '{"tier": "pro"}', 100),
 ('deprecated_endpoint_calls', '{"endpoint": "v1"}', 0), ('replica_lag_seconds', '{"application_name": "r1"}', 0.1),
 ('pool_utilization', '{"role": "app"}', 40), ('pool_utilization', '{"role": "worker"}', 30),
 ('connections', '{"role": "app"}', 40), ('connections', '{"role": "worker"}', 30), ('connections_utilization', '{}', 35),
 ('database_bytes', '{}', 5e10), ('partition_runway_days', '{"table": "public.\"Event\""}', 28);
INSERT INTO capacity_sample (indicator, labels, sampled_at, value)
SELECT s.indicator, s.labels, t,
       s.base * (1 + 0.003 * extract(epoch FROM t - '2030-01-02') / 86400)
              * (1 + 0.05 * sin(extract(epoch FROM t) / 3600))
  FROM series s, generate_series(timestamptz '2030-01-02', timestamptz '2030-04-01 23:59', interval '1 minute') t;
INSERT INTO capacity_latest_sample SELECT s.indicator, s.labels, '2030-04-01 23:59', s.base FROM series s
ON CONFLICT (indicator, labels) DO NOTHING;
INSERT INTO capacity_sample_hourly AS h (indicator, labels, hour, min, max, avg, last, count)
SELECT indicator, labels, date_bin('1 hour', sampled_at, TIMESTAMPTZ '2000-01-01 00:00+00'),
       min(value), max(value), avg(value), (array_agg(value ORDER BY sampled_at DESC))[1], count(*)
  FROM capacity_sample WHERE sampled_at >= '2030-01-02' GROUP BY 1, 2, 3
ON CONFLICT (indicator, labels, hour) DO UPDATE SET min = EXCLUDED.min, max = EXCLUDED.max,
       avg = EXCLUDED.avg, last = EXCLUDED.last, count = EXCLUDED.count;
SELECT capacity_roll_up_days('2030-01-02', '2030-04-01 23:59');
-- vacuumed as autovacuum would have by then: otherwise the first timed
-- calls share the two cores with autovacuum workers on 92 fresh partitions
VACUUM (ANALYZE) capacity_sample;
VACUUM (ANALYZE) capacity_sample_hourly;
VACUUM (ANALYZE) capacity_sample_daily;
SQL
}

# time_call SQL RUNS: median ms of RUNS calls in one session after a warm-up
time_call() {
    local one="DO \$\$DECLARE t0 timestamptz := clock_timestamp(); BEGIN PERFORM * FROM $1; RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000, 3); END \$\$;"
    for _ in $(seq $(($2 + 1))); do echo "$one"; done | q 2>&1 | sed -n 's/.*ms=//p' | tail -n +2 \
        | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}
