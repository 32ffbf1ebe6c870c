-- Preset evidence-gates (decompose only on evidence): a gate's all-of
-- evidence needs every condition, its N consecutive days fire on N and
-- not on N-1 or with one day under, insufficient data is never ok, the
-- checklist is declared before the gate opens, the decision record keeps
-- the evidence references; export -> import evaluates the same.  Uses the
-- helpers of 90_plans (schema pl).
SET search_path = pl, public;
SET TimeZone = 'UTC';
SELECT clear();
-- nothing measured: every gate lacks data -> review, never stay
SELECT * FROM verdict('evidence-gates');
-- endpoint p95 > 200 ms on 14 consecutive days: on 14, not on 13, not with one under
SELECT days('endpoint_p95_ms', 350, '2029-12-28', '2030-01-10', '{"endpoint": "/v1/messages"}');
SELECT * FROM cond('evidence-gates', 'api.endpoint_p95');
DELETE FROM capacity_sample WHERE indicator = 'endpoint_p95_ms' AND sampled_at < '2029-12-29';
SELECT * FROM cond('evidence-gates', 'api.endpoint_p95');
SELECT days('endpoint_p95_ms', 150, '2029-12-28', '2029-12-28', '{"endpoint": "/v1/messages"}');
SELECT * FROM cond('evidence-gates', 'api.endpoint_p95');
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
-- all-of: one condition under (throughput at 500/s in the last half
-- hour) closes the gate although its checklist is done
UPDATE capacity_sample SET value = 500 WHERE indicator = 'messages_per_second' AND sampled_at >= '2030-01-11 11:30+00';
SELECT s ->> 'status' AS api_gate, decision
  FROM capacity_stage('2030-01-11 12:00+00', plan => 'evidence-gates'), jsonb_array_elements(evidence -> 'steps') s
 WHERE s ->> 'name' = 'api-bottleneck';
UPDATE capacity_sample SET value = 1500 WHERE indicator = 'messages_per_second' AND sampled_at >= '2030-01-11 11:30+00';
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

SELECT clear();
