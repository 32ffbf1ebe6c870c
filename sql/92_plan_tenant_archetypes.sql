-- Preset tenant-archetypes: tenants placed in size bands by settings, the
-- archetype x tier grid answered per tenant, and the connection-pool budget
-- (warning at 80 %, breach at 100 %).  Uses the helpers of 90_plans.
SET search_path = pl, public;
SET TimeZone = 'UTC';
SELECT clear();
SELECT capacity_plan_install('tenant-archetypes');
SELECT name, gates, guards, conditions, preset FROM capacity_plans WHERE name = 'tenant-archetypes';

-- tenants' sizes (rows they own), pushed by the application
INSERT INTO capacity_sample (indicator, labels, sampled_at, value) VALUES
 ('tenant_rows', '{"tenant": "acme"}',    '2030-01-11 06:00+00', 250e6),
 ('tenant_rows', '{"tenant": "globex"}',  '2030-01-11 06:00+00', 4e6),
 ('tenant_rows', '{"tenant": "initech"}', '2030-01-11 06:00+00', 100000),
 ('tenant_rows', '{"tenant": "initech"}', '2030-01-10 06:00+00', 90000),
 ('tenant_rows', '{"tenant": "stale"}',   '2029-12-01 06:00+00', 5);
SELECT tenant, size, archetype, grid_column, requirement
  FROM capacity_plan_grid('tenant-archetypes', '2030-01-11 12:00+00')
 WHERE requirement IN ('required', 'recommended');
-- the bands are settings: raise B's bound and globex becomes a B
SELECT capacity_set_threshold('archetype_b_max_rows', 5e6);
SELECT DISTINCT tenant, archetype FROM capacity_plan_grid('tenant-archetypes', '2030-01-11 12:00+00') ORDER BY 1;
SELECT capacity_set_threshold('archetype_b_max_rows', 1e6);
SELECT * FROM public.try($$SELECT * FROM capacity_plan_grid('tiers-abc')$$);

-- the pool budget: pool sizes against max_connections less reserved
SELECT budget = current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int AS budget_ok,
       pool_sizes, percent FROM capacity_pool_budget();
-- 85 % for the last hour: the warning fires, the guardrail holds -> stay
INSERT INTO capacity_sample SELECT 'pool_budget_percent', '{}', t, 85
  FROM generate_series(timestamptz '2030-01-11 11:00+00', '2030-01-11 12:00+00', '5 minutes') t;
INSERT INTO capacity_latest_sample VALUES ('pool_budget_percent', '{}', '2030-01-11 12:00+00', 85);
SELECT * FROM verdict('tenant-archetypes');
SELECT s ->> 'name' AS step, s ->> 'kind' AS kind, s ->> 'status' AS status
  FROM capacity_stage('2030-01-11 12:00+00', plan => 'tenant-archetypes'), jsonb_array_elements(evidence -> 'steps') s;
-- 100 %: breached -> review
INSERT INTO capacity_sample VALUES ('pool_budget_percent', '{}', '2030-01-11 12:30+00', 100);
UPDATE capacity_latest_sample SET sampled_at = '2030-01-11 12:30+00', value = 100 WHERE indicator = 'pool_budget_percent';
SELECT * FROM verdict('tenant-archetypes', '2030-01-11 12:30+00');

-- a grid with a hole is refused with the cell's path
SELECT * FROM public.try($$SELECT capacity_plan_import(jsonb_set(capacity_plan_export('tenant-archetypes'),
                                   '{grid,cells,C,read replica}', '"maybe"'))$$);
SELECT * FROM public.try($$SELECT capacity_plan_import(jsonb_set(capacity_plan_export('tenant-archetypes'),
                                   '{grid,archetypes,1,up_to}', '"nope"'))$$);
SELECT clear();
