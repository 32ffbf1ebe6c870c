-- Preset tiers-abc (single cluster -> read replicas -> tenant-aware
-- sharding): each transition fires on its N consecutive UTC days and not
-- on N-1 or with one day under; the all-of group needs every condition;
-- B's exit suggests rollback, C (one-way) never does; insufficient data is
-- never ok (review) but a guardrail lacking data does not hold the
-- verdict; a trend towards B's threshold within the horizon is "plan";
-- the text review of the plan.  Uses the helpers of 90_plans (schema pl).
SET search_path = pl, public;
SET TimeZone = 'UTC';
SELECT clear();
-- tiers-abc, nothing measured: the move to B lacks data -> review, never stay
SELECT * FROM verdict('tiers-abc');

-- B.recall_p95: recall p95 > 800 ms on 3 consecutive UTC days (Jan 8, 9, 10)
SELECT days('recall_p95_ms', 900, '2030-01-08', '2030-01-10');
SELECT * FROM cond('tiers-abc', 'B.recall_p95');
SELECT * FROM verdict('tiers-abc');
-- N-1 days: Jan 8 has no data -> insufficient, not ok and not firing
DELETE FROM capacity_sample WHERE indicator = 'recall_p95_ms' AND sampled_at < '2030-01-09';
SELECT * FROM cond('tiers-abc', 'B.recall_p95');
-- one day under resets: Jan 8 at 700
SELECT days('recall_p95_ms', 700, '2030-01-08', '2030-01-08');
SELECT * FROM cond('tiers-abc', 'B.recall_p95');
-- today's partial day does not count: the window is the 3 days before as_of's day
SELECT days('recall_p95_ms', 900, '2030-01-08', '2030-01-08');
SELECT * FROM cond('tiers-abc', 'B.recall_p95', '2030-01-10 23:00+00');
SELECT * FROM cond('tiers-abc', 'B.recall_p95', '2030-01-11 00:00+00');
SELECT clear();

-- all-of: the pool saturates on 3 days but writes are not stable -> no move
SELECT days('pool_utilization', 95, '2030-01-08', '2030-01-10');
SELECT days('write_latency_p95_ms', 250, '2030-01-08', '2030-01-10');
SELECT days('recall_p95_ms', 300, '2030-01-08', '2030-01-10');
SELECT days('cpu_utilization', 40, '2030-01-08', '2030-01-10');
SELECT * FROM verdict('tiers-abc');
-- writes stable on the same days: the group holds -> promote to B
SELECT days('write_latency_p95_ms', 150, '2030-01-08', '2030-01-10');
SELECT * FROM verdict('tiers-abc');
-- CPU p95 of each day: one hot quarter in four is not the day's p95... a
-- day whose samples are 40, 40, 40, 90 has p95 82.5 > 65
SELECT clear();
SELECT days('cpu_utilization', 40, '2030-01-08', '2030-01-10');
UPDATE capacity_sample SET value = 90 WHERE indicator = 'cpu_utilization' AND extract(hour FROM sampled_at) = 18;
SELECT * FROM cond('tiers-abc', 'B.cpu_p95');
SELECT clear();

-- at B: every A condition on 7 consecutive days -> rollback to A
SELECT capacity_plan_set_tier('tiers-abc', 'B', 'replicas and partitions live');
SELECT days('write_latency_p95_ms', 120, '2030-01-04', '2030-01-10');
SELECT days('recall_p95_ms', 300, '2030-01-04', '2030-01-10');
SELECT days('cpu_utilization', 40, '2030-01-04', '2030-01-10');
SELECT days('tenant_top_write_qps', 200, '2030-01-04', '2030-01-10');
SELECT * FROM verdict('tiers-abc');
-- 6 days only: insufficient -> review
SELECT * FROM verdict('tiers-abc', '2030-01-10 12:00+00');
-- one condition not holding (top tenant at 25 % of 2000 QPS) -> stay at B
SELECT days('tenant_top_write_qps', 500, '2030-01-07', '2030-01-07');
SELECT * FROM verdict('tiers-abc');
SELECT days('tenant_top_write_qps', 200, '2030-01-07', '2030-01-07');

-- C: top tenant >= 35 % of write capacity (700 QPS) on 7 days -> promote
SELECT days('tenant_top_write_qps', 800, '2030-01-04', '2030-01-10');
SELECT * FROM verdict('tiers-abc');
-- C on 6 days (Jan 4 missing): not yet; one day under (Jan 7 at 600 < 700): no
DELETE FROM capacity_sample WHERE indicator = 'tenant_top_write_qps' AND sampled_at < '2030-01-05';
SELECT status, days FROM cond('tiers-abc', 'C.top_tenant');
SELECT decision, rec FROM verdict('tiers-abc');
SELECT days('tenant_top_write_qps', 800, '2030-01-04', '2030-01-04');
SELECT days('tenant_top_write_qps', 600, '2030-01-07', '2030-01-07');
SELECT status, days FROM cond('tiers-abc', 'C.top_tenant');
SELECT decision, rec FROM verdict('tiers-abc');
-- write p95 > 300 ms on 7 days counts only once Tier B is declared applied
SELECT days('tenant_top_write_qps', 200, '2030-01-04', '2030-01-10');
SELECT days('write_latency_p95_ms', 350, '2030-01-04', '2030-01-10');
SELECT * FROM verdict('tiers-abc');
SELECT capacity_declare('tiers-abc:tier_b_applied', 'replicas, pool and partitions done');
SELECT * FROM verdict('tiers-abc');
-- at C, one-way: every A condition holding never suggests a rollback
SELECT capacity_plan_set_tier('tiers-abc', 'C', 'Acme on its own database');
SELECT days('write_latency_p95_ms', 120, '2030-01-04', '2030-01-10');
SELECT * FROM verdict('tiers-abc');
SELECT evidence -> 'steps' -> 2 FROM capacity_stage('2030-01-11 12:00+00', plan => 'tiers-abc');

-- guardrail: 50,000 rows a day deleted row by row -> review, the guard firing
SELECT days('table_rows_deleted', 0, '2030-01-10', '2030-01-10', '{"table": "public.\"Event\""}');
SELECT days('table_rows_deleted', 50000, '2030-01-11', '2030-01-11', '{"table": "public.\"Event\""}');
SELECT * FROM verdict('tiers-abc', '2030-01-11 06:00+00');
SELECT clear();


-- forecast: recall p95 compounding 3 %/day towards 800 ms (through the
-- sampler's path: hourly and daily rollups) -> plan B, the eta in the
-- evidence; the same at C? no: only moves ahead are forecast
SELECT capacity_plan_set_tier('tiers-abc', 'A', 'back to one cluster');
SELECT capacity_import_samples('recall_p95_ms', '{}', array_agg(t ORDER BY t),
                               array_agg(300 * power(1.03, extract(epoch FROM t - '2029-12-10') / 86400) ORDER BY t),
                               '2030-01-11 12:00+00')
  FROM generate_series(timestamptz '2029-12-10', '2030-01-10 23:00', '1 hour') t;
SELECT * FROM verdict('tiers-abc');
SELECT evidence -> 'plan' ->> 'step' AS step, to_char((evidence -> 'plan' ->> 'by')::timestamptz, 'YYYY-MM-DD') AS by,
       (SELECT f ->> 'method' FROM jsonb_array_elements(evidence -> 'forecasts') f WHERE f ->> 'condition' = 'B.recall_p95') AS method
  FROM capacity_stage('2030-01-11 12:00+00', plan => 'tiers-abc');
-- a horizon that ends before the eta: no plan
SELECT decision FROM capacity_stage('2030-01-11 12:00+00', '2 days', 'tiers-abc');
-- the text review of the plan: its verdict and conditions
SELECT r FROM capacity_report('2030-01-11 12:00+00', '6 months', 'tiers-abc') r
 WHERE r ~ '^(Plan|Forecast to fire|Insufficient)' OR r ~ '^ *2 +B\.recall_p95 ';
SELECT * FROM public.try($$SELECT count(*) FROM capacity_report('2030-01-11 12:00+00', '6 months', 'nope')$$);
DELETE FROM capacity_sample_hourly WHERE indicator = 'recall_p95_ms' AND hour >= '2029-12-01';
DELETE FROM capacity_sample_daily WHERE indicator = 'recall_p95_ms' AND day >= '2029-12-01';
SELECT clear();
