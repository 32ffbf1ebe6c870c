-- Stage evaluation: each transition fires exactly when its trigger holds
-- through its window, not when the condition dips once; too little data is
-- "review", never "stay"; declared flags; contradictions; the weekly
-- decision; bad input.  Samples are placed at fixed times (2030) and read
-- with as_of.
CREATE SCHEMA stg;
SET search_path = stg, public;
SET TimeZone = 'UTC';
-- samples of one series, every step, from .. to (as the sampler or
-- capacity_record would write them)
CREATE FUNCTION stg.put(ind text, v float8, lbl jsonb, from_ts timestamptz, to_ts timestamptz,
                        step interval DEFAULT '1 minute') RETURNS void LANGUAGE sql AS $$
    INSERT INTO capacity_sample SELECT ind, lbl, t, v FROM generate_series(from_ts, to_ts, step) t;
    INSERT INTO capacity_latest_sample VALUES (ind, lbl, to_ts, v)
    ON CONFLICT (indicator, labels) DO UPDATE SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value;
$$;
CREATE FUNCTION stg.clear(ind text) RETURNS void LANGUAGE sql AS $$
    DELETE FROM capacity_sample WHERE indicator = ind AND sampled_at >= '2030-01-01';
    DELETE FROM capacity_latest_sample WHERE indicator = ind;
$$;
CREATE FUNCTION stg.verdict(at timestamptz DEFAULT '2030-01-07 12:00+00')
RETURNS TABLE(current_stage int, recommended_stage int, decision text, firing text[], insufficient jsonb)
LANGUAGE sql AS $$
    SELECT current_stage, recommended_stage, decision, firing, evidence->'insufficient_data'
      FROM capacity_stage(at)
$$;
CREATE TABLE stg."Event" (id bigint, "createdAt" timestamptz);       -- not partitioned (yet)
CREATE TABLE stg."AuditEntry" (id bigint, "createdAt" timestamptz);

-- the ladder as shipped
SELECT stage, name, triggers FROM capacity_stages;

-- nothing measured yet: the next stage's triggers lack data -> review
SELECT * FROM verdict();

-- stage 2: all three triggers have a healthy hour of data -> stay
SELECT put('read_qps', 120, '{}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT put('read_latency_p99_ms', 15, '{}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT put('cpu_utilization', 30, '{}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT * FROM verdict();
-- read QPS > 500 in every sample of the last hour -> promote to 2
SELECT clear('read_qps');
SELECT put('read_qps', 650, '{}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT * FROM verdict();
SELECT trigger_name, status, value, deciding_value, threshold, samples
  FROM capacity_trigger_eval('2030-01-07 12:00+00', capacity_bindings()) WHERE trigger_name = 'read_qps_sustained';
-- one dip inside the window resets it
UPDATE capacity_sample SET value = 480 WHERE indicator = 'read_qps' AND sampled_at = '2030-01-07 11:31+00';
SELECT * FROM verdict();
-- the dip is older than the window an hour later: firing again
SELECT put('read_qps', 650, '{}', '2030-01-07 12:01+00', '2030-01-07 12:40+00');
SELECT * FROM verdict('2030-01-07 12:40+00');
-- samples covering only the last 20 minutes of the hour: insufficient, not "ok"
SELECT trigger_name, status FROM capacity_trigger_eval('2030-01-07 11:10+00', capacity_bindings())
 WHERE trigger_name = 'read_qps_sustained';
-- p99 read latency > 120% of the baseline (a setting, still the default)
SELECT clear('read_qps');
SELECT put('read_qps', 120, '{}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT clear('read_latency_p99_ms');
SELECT put('read_latency_p99_ms', 30, '{}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT * FROM verdict();
SELECT evidence->'triggers'->'read_p99_over_baseline'->'series'->0->>'threshold' AS threshold,
       evidence->'triggers'->'read_p99_over_baseline'->'series'->0->>'threshold_is_default' AS is_default
  FROM capacity_stage('2030-01-07 12:00+00');
SELECT capacity_set_threshold('read_latency_baseline_ms', 40);
SELECT * FROM verdict();
SELECT clear('read_latency_p99_ms');
SELECT put('read_latency_p99_ms', 15, '{}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');

-- we move to stage 2 (no standby in this test: the database contradicts it)
SELECT capacity_set_stage(2, 'replicas added');
SELECT * FROM verdict();
SELECT evidence->'contradictions' FROM capacity_stage('2030-01-07 12:00+00');

-- stage 3: write p99 > 50% of the write SLO for an hour
SELECT put('write_latency_p99_ms', 40, '{}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT put('table_rows', 40e6, '{"table": "stg.\"Event\""}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT put('table_rows', 10e6, '{"table": "stg.\"AuditEntry\""}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT * FROM verdict();
SELECT clear('write_latency_p99_ms');
SELECT put('write_latency_p99_ms', 140, '{}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT * FROM verdict();
UPDATE capacity_sample SET value = 90 WHERE indicator = 'write_latency_p99_ms' AND sampled_at = '2030-01-07 11:45+00';
SELECT * FROM verdict();
-- Event passes 100M rows (newest sample)
UPDATE capacity_sample SET value = 101e6
 WHERE indicator = 'table_rows' AND labels = '{"table": "stg.\"Event\""}' AND sampled_at = '2030-01-07 12:00+00';
SELECT * FROM verdict();
SELECT trigger_name, labels, value, status FROM capacity_trigger_eval('2030-01-07 12:00+00', capacity_bindings())
 WHERE trigger_name IN ('event_rows', 'audit_rows') ORDER BY 1;

-- declaring stage 3 while Event is not partitioned: review, with the reason
SELECT clear('table_rows');
SELECT clear('write_latency_p99_ms');
SELECT put('write_latency_p99_ms', 40, '{}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT capacity_set_stage(3, 'partitioned, we think');
SELECT * FROM verdict();
SELECT jsonb_array_elements_text(evidence->'contradictions') FROM capacity_stage('2030-01-07 12:00+00');

-- stage 4: declared triggers, and withdrawing them
SELECT capacity_declare('dedicated_infrastructure', 'Acme requires a dedicated database');
SELECT * FROM verdict();
SELECT capacity_declare('dedicated_infrastructure', 'Acme signed the shared tier after all', false);
SELECT * FROM verdict();

-- stage 5: APAC p99 > 1.5x US p99 over the hour (and the EU flag)
SELECT put('region_p99_ms', 300, '{"region": "apac"}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT put('region_p99_ms', 220, '{"region": "us"}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT trigger_name, value, status FROM capacity_trigger_eval('2030-01-07 12:00+00', capacity_bindings())
 WHERE trigger_name = 'apac_p99_over_us';
SELECT clear('region_p99_ms');
SELECT put('region_p99_ms', 300, '{"region": "apac"}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT put('region_p99_ms', 150, '{"region": "us"}', '2030-01-07 10:50+00', '2030-01-07 12:00+00');
SELECT * FROM verdict();
SELECT capacity_declare('eu_residency_customer', 'Contoso GmbH signed');
SELECT firing FROM verdict();

-- stage 6: webhook receiver p99 > 2x SLO for 30 minutes; a dip resets it
SELECT put('webhook_receiver_p99_ms', 4500, '{}', '2030-01-07 11:25+00', '2030-01-07 12:00+00');
SELECT * FROM verdict();
UPDATE capacity_sample SET value = 3000 WHERE indicator = 'webhook_receiver_p99_ms' AND sampled_at = '2030-01-07 11:50+00';
SELECT * FROM verdict();
-- 25 minutes of breach are not 30
SELECT trigger_name, status FROM capacity_trigger_eval('2030-01-07 11:50+00', capacity_bindings())
 WHERE trigger_name = 'webhook_p99_over_slo';
SELECT put('webhook_deliveries_per_day', 1.2e6, '{}', '2030-01-07 12:00+00', '2030-01-07 12:00+00');
SELECT * FROM verdict();

-- growth from a cumulative counter: rows/month over 30 days
SELECT put('table_rows_inserted', 0, '{"table": "stg.\"Event\""}', '2029-12-08 12:00+00', '2029-12-08 12:00+00');
SELECT put('table_rows_inserted', 6e6, '{"table": "stg.\"Event\""}', '2030-01-07 12:00+00', '2030-01-07 12:00+00');
SELECT trigger_name, round(value) AS rows_per_month, threshold, status
  FROM capacity_trigger_eval('2030-01-07 12:00+00', capacity_bindings())
 WHERE trigger_name IN ('event_growth', 'audit_growth') ORDER BY 1;

-- the weekly decision keeps the evidence of the moment
SELECT capacity_decide('stay', 'weekly review: plan stage 5 next quarter', '2030-01-07 12:00+00');
SELECT decided_at, decision, note, current_stage, evaluation, cardinality(firing) > 0 AS has_firing,
       jsonb_typeof(evidence->'triggers') AS evidence, jsonb_array_length(breaches) > 0 AS has_breaches
  FROM capacity_decisions;

-- bad input changes nothing
SELECT (SELECT count(*) FROM capacity_stage_history) AS stages_before,
       (SELECT count(*) FROM capacity_declaration_history) AS declarations_before,
       (SELECT count(*) FROM capacity_decision) AS decisions_before,
       (SELECT string_agg(value::text, ',' ORDER BY name) FROM capacity_setting) AS settings_before \gset
SELECT * FROM try($q$SELECT capacity_set_stage(0, 'x')$q$);
SELECT * FROM try($q$SELECT capacity_set_stage(7, 'x')$q$);
SELECT * FROM try($q$SELECT capacity_declare('moon_base', 'x')$q$);
SELECT * FROM try($q$SELECT capacity_decide('maybe', 'x')$q$);
SELECT * FROM try($q$SELECT capacity_set_threshold('write_slo_ms', 'NaN')$q$);
SELECT * FROM try($q$SELECT capacity_set_threshold('no_such_setting', 1)$q$);
SELECT * FROM try($q$SELECT capacity_bind_table('Invoice', 'stg."Event"')$q$);
SELECT (SELECT count(*) FROM capacity_stage_history) = :stages_before AS same_stages,
       (SELECT count(*) FROM capacity_declaration_history) = :declarations_before AS same_declarations,
       (SELECT count(*) FROM capacity_decision) = :decisions_before AS same_decisions,
       (SELECT string_agg(value::text, ',' ORDER BY name) FROM capacity_setting) = :'settings_before' AS same_settings;

-- the weekly report: verdict, every trigger with a 30-day sparkline
-- against its threshold (from hourly rollups), runway, decisions
INSERT INTO capacity_sample_hourly (indicator, labels, hour, min, max, avg, last, count)
SELECT 'webhook_receiver_p99_ms', '{}', timestamptz '2029-12-09 12:00+00' + d * interval '1 day',
       1000 + d * 120, 1000 + d * 120, 1000 + d * 120, 1000 + d * 120, 60
  FROM generate_series(0, 29) d;
SELECT * FROM capacity_report('2030-01-07 12:00+00');
