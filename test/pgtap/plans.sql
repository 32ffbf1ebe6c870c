-- pgTAP: how an application's CI checks its capacity plan with
-- matter_capacity.  The plan document lives in the application's
-- repository; CI loads it, feeds the figures of a load test (or of
-- production, through capacity_record) and asserts where the plan stands.
-- Runs in one transaction and rolls back.
BEGIN;
SELECT plan(10);
SET LOCAL TimeZone = 'UTC';

-- the application's plan: stay on one cluster until API p95 breaches for
-- 3 consecutive UTC days while the queue is deep; come back after 2 good days
SELECT is(capacity_plan_import($doc$
{"name": "acme-ci",
 "indicators": {"acme_api_p95_ms": {"unit": "ms"}, "acme_queue_depth": {"unit": "count"}},
 "tiers": [
   {"name": "shared"},
   {"name": "dedicated", "from": "shared",
    "enter": {"any": [{"all": [
       {"name": "api_slow", "indicator": "acme_api_p95_ms", "comparator": ">", "threshold": 250, "days": 3},
       {"name": "queue_deep", "indicator": "acme_queue_depth", "comparator": ">", "threshold": 1000, "days": 3, "daily": "max"}]}]},
    "exit": {"all": [
       {"name": "api_fast", "indicator": "acme_api_p95_ms", "comparator": "<=", "threshold": 150, "days": 2}]}}]}
$doc$), 'acme-ci', 'the plan document loads');

SELECT throws_ok($$SELECT capacity_plan_import('{"name": "acme-ci", "tiers": [{"name": "shared"}, {"name": "dedicated", "from": "shared", "enter": {"any": [{"indicator": "acme_api_p95_ms", "comparator": "=>", "threshold": 1, "days": 3}]}}]}')$$,
    '22023', NULL, 'a typo in the document is refused');

-- three days of the load test's figures (4 samples a day)
INSERT INTO capacity_sample (indicator, labels, sampled_at, value)
SELECT i, '{}', t, v
  FROM (VALUES ('acme_api_p95_ms', 300.0), ('acme_queue_depth', 1500.0)) f(i, v),
       generate_series(timestamptz '2030-03-01', '2030-03-03 18:00', '6 hours') t;
INSERT INTO capacity_latest_sample VALUES ('acme_api_p95_ms', '{}', '2030-03-03 18:00+00', 300),
                                          ('acme_queue_depth', '{}', '2030-03-03 18:00+00', 1500);

SELECT is((SELECT decision FROM capacity_stage('2030-03-04 09:00+00', plan => 'acme-ci')), 'promote',
          'three slow days with a deep queue: move to dedicated');
SELECT is((SELECT recommended_name FROM capacity_stage('2030-03-04 09:00+00', plan => 'acme-ci')), 'dedicated',
          'the tier recommended');
SELECT is((SELECT decision FROM capacity_stage('2030-03-03 09:00+00', plan => 'acme-ci')), 'review',
          'two days are not enough data: review, never stay');
SELECT is((SELECT status FROM capacity_trigger_eval('2030-03-04 09:00+00', capacity_bindings(), 'acme-ci')
            WHERE trigger_name = 'api_slow'), 'firing', 'the condition fires on its own');

-- once moved, two fast days suggest going back
SELECT capacity_plan_set_tier('acme-ci', 'dedicated', 'moved in CI');
INSERT INTO capacity_sample (indicator, labels, sampled_at, value)
SELECT 'acme_api_p95_ms', '{}', t, 90 FROM generate_series(timestamptz '2030-03-04', '2030-03-05 18:00', '6 hours') t;
SELECT is((SELECT decision FROM capacity_stage('2030-03-06 09:00+00', plan => 'acme-ci')), 'rollback',
          'two fast days at dedicated: roll back');
SELECT is((SELECT firing FROM capacity_stage('2030-03-06 09:00+00', plan => 'acme-ci')), ARRAY['api_fast'],
          'the exit rule is the evidence');

-- the exported document loads back to the same plan
SELECT is(capacity_plan_import(capacity_plan_export('acme-ci')), 'acme-ci', 'export and import round-trip');
SELECT is((SELECT decision FROM capacity_stage('2030-03-06 09:00+00', plan => 'acme-ci')), 'rollback',
          'and evaluate the same');

SELECT * FROM finish();
ROLLBACK;
