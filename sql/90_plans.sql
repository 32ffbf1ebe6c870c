-- Plans: several installed, one active, any evaluated by name over the
-- same samples; the six-stage ladder as a document; hostile documents are
-- refused with the path of the bad field and nothing changed.  Samples in
-- 2030.  The helpers (schema pl) serve the presets' own tests:
-- 91_plan_control_plane, 92_plan_tenant_archetypes, 94_plan_tiers_abc,
-- 95_plan_evidence_gates, 96_plan_six_stage.
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
 ('bad checklist', '{"name": "x", "gates": [{"name": "g", "when": {"any": [{"declared": "f"}]}, "checklist": [1]}]}'),
 ('2 MB description', jsonb_build_object('name', 'x', 'description', repeat('a', 2000000), 'alerts', '[{"name": "a", "when": {"any": [{"declared": "f"}]}}]'::jsonb)),
 ('5 kB condition description', ('{"name": "x", "alerts": [{"name": "a", "when": {"any": [{"declared": "f", "description": "' || repeat('b', 5000) || '"}]}}]}')::jsonb);
SELECT b.label, t.state, t.message, t.hint
  FROM bad b, LATERAL public.try(format('SELECT capacity_plan_import(%L::jsonb)', b.doc)) t;
SELECT (SELECT count(*) FROM capacity_plan) = (SELECT count(*) FROM pl.before)
   AND NOT EXISTS (SELECT 1 FROM capacity_plan p JOIN pl.before b USING (name) WHERE p.doc IS DISTINCT FROM b.doc)
   AND NOT EXISTS (SELECT 1 FROM capacity_plan WHERE name = 'x') AS nothing_changed;
-- the good document of the same shape loads
SELECT capacity_plan_import('{"name": "x", "tiers": [{"name": "A"}, {"name": "B", "from": "A", "enter": {"any": [{"declared": "f"}]}}]}');
SELECT * FROM public.try($$SELECT capacity_plan_install('no-such-preset')$$);
SELECT * FROM public.try($$SELECT capacity_plan_set_tier('tiers-abc', 'D', 'x')$$);
