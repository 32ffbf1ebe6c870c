-- Plans: several installed, one active, any evaluated by name over the
-- same samples.  N consecutive UTC days fire on N days and not on N-1 or
-- with one day under; all-of groups need every condition; exit rules
-- suggest rollback, one-way tiers never do; too little data is review;
-- export -> import evaluates the same; hostile documents are refused with
-- the path of the bad field and nothing changed.  Samples in 2030.
CREATE SCHEMA pl;
SET search_path = pl, public;
SET TimeZone = 'UTC';
-- a daily value of one series on every UTC day first..last (4 samples a day)
CREATE FUNCTION pl.days(ind text, v float8, first date, last date, lbl jsonb DEFAULT '{}') RETURNS void
LANGUAGE sql AS $$
    DELETE FROM capacity_sample WHERE indicator = ind AND labels = lbl AND sampled_at >= first AND sampled_at < last + 1;
    INSERT INTO capacity_sample SELECT ind, lbl, t, v FROM generate_series(first::timestamptz, last + interval '18 hours', '6 hours') t;
    INSERT INTO capacity_latest_sample VALUES (ind, lbl, last + interval '18 hours', v)
    ON CONFLICT (indicator, labels) DO UPDATE SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value;
$$;
CREATE FUNCTION pl.clear() RETURNS void LANGUAGE sql AS $$
    DELETE FROM capacity_sample WHERE sampled_at >= '2030-01-01';
    DELETE FROM capacity_latest_sample WHERE sampled_at >= '2030-01-01';
$$;
CREATE FUNCTION pl.verdict(p text, at timestamptz DEFAULT '2030-01-11 12:00+00')
RETURNS TABLE(cur text, rec text, decision text, firing text[], insufficient jsonb)
LANGUAGE sql AS $$
    SELECT current_stage || ' ' || coalesce(current_name, '-'), recommended_stage || ' ' || coalesce(recommended_name, '-'),
           decision, firing, evidence -> 'insufficient_data'
      FROM capacity_stage(at, plan => p)
$$;
CREATE FUNCTION pl.cond(p text, c text, at timestamptz DEFAULT '2030-01-11 12:00+00')
RETURNS TABLE(status text, value float8, deciding float8, days bigint, since timestamptz)
LANGUAGE sql AS $$
    SELECT e.status, e.value, e.deciding_value, e.samples, e.window_start
      FROM capacity_trigger_eval(at, capacity_bindings(), p) e WHERE e.trigger_name = c
$$;

-- after install: one plan, the six-stage ladder, active
SELECT name, active, tiers, gates, preset FROM capacity_plans;
SELECT capacity_plan_install('tiers-abc');
SELECT capacity_plan_install('evidence-gates');
SELECT name, active, tiers, gates, guards, conditions, preset FROM capacity_plans;
-- capacity_stage() still evaluates the six-stage ladder
SELECT current_stage, recommended_stage, decision FROM capacity_stage('2030-01-11 12:00+00');

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

-- evidence-gates: all three API conditions hold, the checklist is not
-- declared -> review; declared -> promote (the gate open)
SELECT days('endpoint_p95_ms', 350, '2029-12-28', '2030-01-10', '{"endpoint": "/v1/messages"}');
SELECT days('endpoint_p95_ms', 80, '2029-12-28', '2030-01-10', '{"endpoint": "/v1/health"}');
INSERT INTO capacity_sample SELECT 'statement_top_share', '{}', t, 0.55
  FROM generate_series(timestamptz '2030-01-11 10:50+00', '2030-01-11 12:00+00', '1 minute') t;
INSERT INTO capacity_latest_sample VALUES ('statement_top_share', '{}', '2030-01-11 12:00+00', 0.55);
SELECT * FROM verdict('evidence-gates');
INSERT INTO capacity_sample SELECT 'messages_per_second', '{}', t, 1500
  FROM generate_series(timestamptz '2030-01-11 10:50+00', '2030-01-11 12:00+00', '1 minute') t;
INSERT INTO capacity_latest_sample VALUES ('messages_per_second', '{}', '2030-01-11 12:00+00', 1500);
SELECT * FROM verdict('evidence-gates');
SELECT capacity_declare(f, 'done') FROM unnest(ARRAY['api-bottleneck:evidence_met', 'api-bottleneck:optimisation_exhausted',
       'api-bottleneck:clear_boundary', 'api-bottleneck:owner', 'api-bottleneck:cost_benefit']) f;
SELECT * FROM verdict('evidence-gates');
SELECT capacity_declare('api-bottleneck:observability_plan', 'dashboards agreed');
SELECT * FROM verdict('evidence-gates');
SELECT s ->> 'name' AS gate, s ->> 'status' AS status, s -> 'checklist' ->> 'api-bottleneck.checklist.api-bottleneck:owner' AS owner_declared
  FROM capacity_stage('2030-01-11 12:00+00', plan => 'evidence-gates'), jsonb_array_elements(evidence -> 'steps') s
 WHERE s ->> 'kind' = 'gate';
-- the decision record: plan, breaches with their dates, the caller's evidence
SELECT capacity_decide('promote', 'split the messages API', '2030-01-11 12:00+00', plan => 'evidence-gates',
                       evidence_refs => ARRAY['ci/run/4711/plan-check.tap', 's3://evidence/api-2030-01.html']);
SELECT plan, current_tier, decision, evaluation, firing, evidence_refs,
       (SELECT jsonb_agg(b ->> 'trigger' || coalesce(' since ' || (b ->> 'since'), '')) FROM jsonb_array_elements(breaches) b) AS breaches
  FROM capacity_decisions ORDER BY id DESC LIMIT 1;
SELECT * FROM public.try($$SELECT capacity_decide('stay', 'x', '2030-01-11 12:00+00', evidence_refs => ARRAY['ok', NULL])$$);
SELECT * FROM public.try($$SELECT capacity_stage(plan => 'no-such-plan')$$);

-- export -> import under another name: the same evaluation
SELECT capacity_plan_import(jsonb_set(capacity_plan_export('evidence-gates'), '{name}', '"gates-copy"'));
SELECT a.decision = b.decision AND a.firing = b.firing
       AND (a.evidence - 'plan') = (b.evidence - 'plan') AS identical
  FROM capacity_stage('2030-01-11 12:00+00', plan => 'evidence-gates') a,
       capacity_stage('2030-01-11 12:00+00', plan => 'gates-copy') b;
SELECT capacity_plan_export('gates-copy') - 'name' = capacity_plan_export('evidence-gates') - 'name' AS same_document;
-- the six-stage ladder as a document reads back as a plan of six tiers
SELECT capacity_plan_import(jsonb_set(capacity_plan_export('matter-six-stage'), '{name}', '"my-ladder"'));
SELECT name, tiers, array_length(guards, 1) AS alerts, conditions FROM capacity_plans WHERE name = 'my-ladder';
SELECT * FROM verdict('my-ladder');

-- the active plan
SELECT capacity_plan_use('tiers-abc');
SELECT name, active FROM capacity_plans;
SELECT current_name, decision FROM capacity_stage('2030-01-11 12:00+00');
SELECT * FROM public.try($$SELECT capacity_plan_use('nope')$$);
SELECT capacity_plan_use('matter-six-stage');

-- hostile documents: refused with the path of the bad field, nothing changed
CREATE TABLE pl.before AS SELECT name, doc FROM capacity_plan;
CREATE TEMP TABLE bad(label text, doc jsonb);
INSERT INTO bad VALUES
 ('not an object', '[1]'),
 ('no name', '{"tiers": []}'),
 ('bad name', '{"name": "Robert''); DROP TABLE x;--"}'),
 ('six-stage', '{"name": "matter-six-stage", "alerts": []}'),
 ('unknown field', '{"name": "x", "tierz": []}'),
 ('no steps', '{"name": "x"}'),
 ('unknown indicator', '{"name": "x", "tiers": [{"name": "A"}, {"name": "B", "from": "A", "enter": {"any": [{"indicator": "nope", "threshold": 1, "days": 3}]}}]}'),
 ('bad comparator', '{"name": "x", "tiers": [{"name": "A"}, {"name": "B", "from": "A", "enter": {"any": [{"indicator": "cpu_utilization", "threshold": 1, "window": "1 hour"}]}}, {"name": "C", "from": "B", "enter": {"any": [{"all": [{"declared": "f"}, {"indicator": "cpu_utilization", "comparator": "=>", "threshold": 1, "days": 3}]}]}}]}'),
 ('bad window', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"indicator": "cpu_utilization", "threshold": 1, "window": "forever"}]}}]}'),
 ('window too long', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"indicator": "cpu_utilization", "threshold": 1, "window": "2 years"}]}}]}'),
 ('days not whole', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"indicator": "cpu_utilization", "threshold": 1, "days": 2.5}]}}]}'),
 ('both window and days', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"indicator": "cpu_utilization", "threshold": 1, "days": 2, "window": "1 hour"}]}}]}'),
 ('no threshold', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"indicator": "cpu_utilization", "window": "1 hour"}]}}]}'),
 ('threshold too large', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"indicator": "cpu_utilization", "threshold": 1e400, "window": "1 hour"}]}}]}'),
 ('days as text', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"indicator": "cpu_utilization", "threshold": 1, "days": "3"}]}}]}'),
 ('setting too large', '{"name": "x", "settings": {"s": {"value": 1e999}}, "alerts": [{"name": "a", "when": {"any": [{"declared": "f"}]}}]}'),
 ('threshold as text', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"indicator": "cpu_utilization", "threshold": "1; DROP", "window": "1 hour"}]}}]}'),
 ('unknown setting', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"indicator": "cpu_utilization", "threshold": 1, "setting": "nope"}]}}]}'),
 ('unknown table', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"indicator": "table_rows", "threshold": 1, "table": "Nope"}]}}]}'),
 ('rule shape', '{"name": "x", "alerts": [{"name": "a", "when": [{"indicator": "cpu_utilization", "threshold": 1}]}]}'),
 ('empty any', '{"name": "x", "alerts": [{"name": "a", "when": {"any": []}}]}'),
 ('unknown condition field', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"indicator": "cpu_utilization", "threshold": 1, "sql": "SELECT 1"}]}}]}'),
 ('indicator and declared', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"indicator": "cpu_utilization", "declared": "f", "threshold": 1}]}}]}'),
 ('duplicate step', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"declared": "f"}]}}, {"name": "a", "when": {"any": [{"declared": "g"}]}}]}'),
 ('duplicate condition', '{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"name": "c", "declared": "f"}, {"name": "c", "declared": "g"}]}}]}'),
 ('two first tiers', '{"name": "x", "tiers": [{"name": "A"}, {"name": "B"}]}'),
 ('from unknown tier', '{"name": "x", "tiers": [{"name": "A"}, {"name": "B", "from": "Z", "enter": {"any": [{"declared": "f"}]}}]}'),
 ('cycle', '{"name": "x", "tiers": [{"name": "A"}, {"name": "B", "from": "C", "enter": {"any": [{"declared": "f"}]}}, {"name": "C", "from": "B", "enter": {"any": [{"declared": "g"}]}}]}'),
 ('branch', '{"name": "x", "tiers": [{"name": "A"}, {"name": "B", "from": "A", "enter": {"any": [{"declared": "f"}]}}, {"name": "C", "from": "A", "enter": {"any": [{"declared": "g"}]}}]}'),
 ('tier without enter', '{"name": "x", "tiers": [{"name": "A"}, {"name": "B", "from": "A"}]}'),
 ('one-way with exit', '{"name": "x", "tiers": [{"name": "A"}, {"name": "B", "from": "A", "one_way": true, "enter": {"any": [{"declared": "f"}]}, "exit": {"all": [{"declared": "g"}]}}]}'),
 ('bad setting value', '{"name": "x", "settings": {"s": {"value": -1}}, "alerts": [{"name": "a", "when": {"any": [{"declared": "f"}]}}]}'),
 ('bad checklist', '{"name": "x", "gates": [{"name": "g", "when": {"any": [{"declared": "f"}]}, "checklist": [1]}]}');
SELECT b.label, t.state, t.message, t.hint
  FROM bad b, LATERAL public.try(format('SELECT capacity_plan_import(%L::jsonb)', b.doc)) t;
SELECT (SELECT count(*) FROM capacity_plan) = (SELECT count(*) FROM pl.before)
   AND NOT EXISTS (SELECT 1 FROM capacity_plan p JOIN pl.before b USING (name) WHERE p.doc IS DISTINCT FROM b.doc)
   AND NOT EXISTS (SELECT 1 FROM capacity_plan WHERE name = 'x') AS nothing_changed;
-- the good document of the same shape loads
SELECT capacity_plan_import('{"name": "x", "tiers": [{"name": "A"}, {"name": "B", "from": "A", "enter": {"any": [{"declared": "f"}]}}]}');
SELECT * FROM public.try($$SELECT capacity_plan_install('no-such-preset')$$);
SELECT * FROM public.try($$SELECT capacity_plan_set_tier('tiers-abc', 'D', 'x')$$);
