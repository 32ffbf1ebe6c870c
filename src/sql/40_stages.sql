-- Stages: the ladder, its triggers, SLO settings, declarations, decisions.

CREATE TABLE @extschema@.capacity_stage_def (
    stage       integer PRIMARY KEY CHECK (stage BETWEEN 1 AND 6),
    name        text NOT NULL,
    summary     text NOT NULL,
    ceiling     text NOT NULL,
    runbook     text,
    slo_impact  text,
    shipped     boolean NOT NULL DEFAULT false   -- as installed, unedited (80_dump.sql)
);

-- Thresholds that depend on the customer's SLO; value starts at default_value.
CREATE TABLE @extschema@.capacity_setting (
    name          text PRIMARY KEY,
    value         double precision NOT NULL,
    default_value double precision NOT NULL,
    unit          text,
    description   text NOT NULL,
    shipped       boolean NOT NULL DEFAULT false
);

-- Logical hot tables ("Event", "AuditEntry") bound to relations; a NULL
-- relation means "the table of that name found on the search path".
CREATE TABLE @extschema@.capacity_table_binding (
    logical_name text PRIMARY KEY,
    table_name   regclass,
    shipped      boolean NOT NULL DEFAULT false
);
-- capacity_bindings() (stage evaluation, report, forecast) reads the
-- logical table names as the caller: pg_monitor reads them too.
GRANT SELECT ON @extschema@.capacity_table_binding TO pg_monitor;

CREATE TABLE @extschema@.capacity_trigger (
    name              text PRIMARY KEY,
    stage             integer REFERENCES @extschema@.capacity_stage_def,  -- NULL: leading indicator alert
    indicator         text,
    label_filter      jsonb NOT NULL DEFAULT '{}',
    bind_table        text REFERENCES @extschema@.capacity_table_binding,
    aggregate         text NOT NULL DEFAULT 'all'
                      CHECK (aggregate IN ('all', 'latest', 'growth', 'ratio')),
    ratio_filter      jsonb,
    per_period        interval,
    comparator        text NOT NULL DEFAULT '>' CHECK (comparator IN ('>', '>=', '<', '<=')),
    threshold         double precision,
    threshold_setting text REFERENCES @extschema@.capacity_setting,
    sustain           interval NOT NULL DEFAULT '0',
    declared_flag     text,
    description       text NOT NULL,
    shipped           boolean NOT NULL DEFAULT false,
    CHECK ((declared_flag IS NULL) = (indicator IS NOT NULL)),
    CHECK (indicator IS NULL OR threshold IS NOT NULL),
    CHECK (aggregate <> 'ratio' OR ratio_filter IS NOT NULL),
    CHECK (aggregate <> 'growth' OR per_period IS NOT NULL)
);
COMMENT ON TABLE @extschema@.capacity_trigger IS
    'Entry triggers of each stage (stage set) and leading-indicator alerts (stage NULL). '
    'all: every sample of the sustain window breaches; latest: the newest sample; '
    'growth: increase of a cumulative counter over the window per per_period; '
    'ratio: window average of the series over that of ratio_filter.';

CREATE TABLE @extschema@.capacity_declaration (
    flag        text PRIMARY KEY,
    active      boolean NOT NULL,
    note        text,
    changed_at  timestamptz NOT NULL,
    changed_by  name NOT NULL
);
CREATE TABLE @extschema@.capacity_declaration_history (
    id          bigserial PRIMARY KEY,
    flag        text NOT NULL,
    active      boolean NOT NULL,
    note        text,
    changed_at  timestamptz NOT NULL,
    changed_by  name NOT NULL
);

CREATE TABLE @extschema@.capacity_stage_history (
    id          bigserial PRIMARY KEY,
    stage       integer NOT NULL REFERENCES @extschema@.capacity_stage_def,
    note        text,
    set_at      timestamptz NOT NULL,
    set_by      name NOT NULL
);

CREATE TABLE @extschema@.capacity_decision (
    id                bigserial PRIMARY KEY,
    decided_at        timestamptz NOT NULL,
    decision          text NOT NULL CHECK (decision IN ('stay', 'promote', 'rollback')),
    note              text,
    current_stage     integer NOT NULL,
    recommended_stage integer NOT NULL,
    evaluation        text NOT NULL,
    firing            text[] NOT NULL,
    breaches          jsonb NOT NULL,
    evidence          jsonb NOT NULL,
    decided_by        name NOT NULL,
    plan              text,                       -- the plan evaluated (1.1; NULL: before plans)
    current_tier      text,                       -- the plan's current tier by name (1.1)
    evidence_refs     text[] NOT NULL DEFAULT '{}' -- the caller's gate artifacts: paths, run ids (1.1)
);

SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_declaration', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_declaration_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_stage_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_decision', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_declaration_history_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_stage_history_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_decision_id_seq', '');

-- The six-stage plan this extension ships.
INSERT INTO @extschema@.capacity_stage_def VALUES
 (1, 'single region, single primary',
     'One primary serves reads and writes in one region.',
     'One primary''s CPU, IOPS and connections; hot tables up to about 100M rows.',
     'docs/runbooks/read-replicas.md',
     'p99 grows with load; every read competes with writes.'),
 (2, 'read replicas',
     'Streaming replicas take read traffic; writes stay on the primary.',
     'Primary write throughput; replica lag bounds read-your-writes.',
     'docs/runbooks/read-replicas.md',
     'Read p99 back to baseline; reads may be up to replica lag stale.'),
 (3, 'partition hot tables',
     'Event and AuditEntry are time-partitioned (and hashed by tenant); retention detaches old periods.',
     'Per-partition size; a tenant + time query scans one leaf.',
     'docs/runbooks/stage-3-migration.md',
     'Write p99 steady as tables grow; queries without a time predicate get slower.'),
 (4, 'per-tenant DB tier ladder',
     'Large or regulated tenants move to dedicated databases by tier.',
     'Number of dedicated tenants operations can run.',
     'docs/runbooks/tenant-tier-migration.md',
     'Noisy neighbours isolated; a migration window per moved tenant.'),
 (5, 'multi-region',
     'Regional primaries for residency and latency; global control plane.',
     'Cross-region consistency and failover drills.',
     'docs/runbooks/region-failover.md',
     'Regional p99 near US p99; cross-region writes pay a round trip.'),
 (6, 'dedicated webhook delivery cluster',
     'Webhook delivery moves off the primary database to its own cluster.',
     'Delivery queue throughput of the webhook cluster.',
     'docs/runbooks/cdc-lag-recovery.md',
     'Webhook p99 independent of application load.');

INSERT INTO @extschema@.capacity_setting (name, value, default_value, unit, description) VALUES
 ('read_latency_baseline_ms',  20,   20,   'ms',   'Baseline p99 read latency (stage 2 fires above 120% of it)'),
 ('write_slo_ms',              200,  200,  'ms',   'Write latency SLO ceiling (stage 3 fires when write p99 passes 50% of it)'),
 ('webhook_slo_ms',            2000, 2000, 'ms',   'Webhook receiver p99 SLO (stage 6 fires at 2x for 30 min)'),
 ('kms_quota_per_min',         6000, 6000, 'calls/min', 'KMS call quota (alert at 80%)'),
 ('cost_budget_per_request',   0.001, 0.001, 'USD', 'Budgeted cost per request (alert at 110%)'),
 ('cache_hit_target',          0.99, 0.99, 'ratio', 'Target buffer cache hit ratio (alert below 80% of it)'),
 ('mcp_tool_calls_per_min_limit', 600, 600, 'calls/min', 'Tool calls per minute per tier above which a tier is an outlier');

INSERT INTO @extschema@.capacity_table_binding (logical_name, table_name) VALUES
 ('Event', NULL), ('AuditEntry', NULL);

INSERT INTO @extschema@.capacity_indicator (name, unit, source, description) VALUES
 ('region_p99_ms',              'ms',        'push', 'Request p99 per region, labels {region} (us, eu, apac ...)'),
 ('webhook_deliveries_per_day', 'per day',   'push', 'Webhook deliveries in the last 24 h'),
 ('webhook_receiver_p99_ms',    'ms',        'push', 'Webhook receiver response p99, labels {endpoint} optional'),
 ('webhook_queue_depth_p99',    'count',     'push', 'Webhook queue depth p99 per endpoint, labels {endpoint}'),
 ('kms_calls_per_min',          'calls/min', 'push', 'KMS calls per minute'),
 ('cdc_lag_p99_seconds',        'seconds',   'push', 'Change-data-capture lag p99'),
 ('sandbox_live_write_ratio',   'ratio',     'push', 'Sandbox over live write ratio per org, labels {org}'),
 ('cost_per_request',           'USD',       'push', 'Infrastructure cost per request'),
 ('mcp_tool_calls_per_min',     'calls/min', 'push', 'MCP tool calls per minute per tier, labels {tier}'),
 ('deprecated_endpoint_calls',  'count',     'push', 'Calls to deprecated endpoints since the last push, labels {endpoint}');

INSERT INTO @extschema@.capacity_trigger
 (name, stage, indicator, label_filter, bind_table, aggregate, ratio_filter, per_period,
  comparator, threshold, threshold_setting, sustain, declared_flag, description) VALUES
 -- entry triggers
 ('read_qps_sustained',        2, 'read_qps', '{}', NULL, 'all', NULL, NULL, '>', 500, NULL, '1 hour', NULL,
  'read QPS > 500 sustained for 1 h'),
 ('read_p99_over_baseline',    2, 'read_latency_p99_ms', '{}', NULL, 'all', NULL, NULL, '>', 1.2, 'read_latency_baseline_ms', '1 hour', NULL,
  'p99 read latency > 120% of baseline for 1 h'),
 ('primary_cpu_sustained',     2, 'cpu_utilization', '{}', NULL, 'all', NULL, NULL, '>', 50, NULL, '1 hour', NULL,
  'primary CPU > 50% sustained for 1 h'),
 ('event_rows',                3, 'table_rows', '{}', 'Event', 'latest', NULL, NULL, '>', 100e6, NULL, '0', NULL,
  'Event > 100M rows'),
 ('audit_rows',                3, 'table_rows', '{}', 'AuditEntry', 'latest', NULL, NULL, '>', 100e6, NULL, '0', NULL,
  'AuditEntry > 100M rows'),
 ('write_p99_over_slo_half',   3, 'write_latency_p99_ms', '{}', NULL, 'all', NULL, NULL, '>', 0.5, 'write_slo_ms', '1 hour', NULL,
  'write p99 > 50% of SLO ceiling for 1 h'),
 ('dedicated_infrastructure',  4, NULL, '{}', NULL, 'latest', NULL, NULL, '>', NULL, NULL, '0', 'dedicated_infrastructure',
  'declared: a customer requires dedicated infrastructure'),
 ('soc2_separation_finding',   4, NULL, '{}', NULL, 'latest', NULL, NULL, '>', NULL, NULL, '0', 'soc2_separation_finding',
  'declared: SOC 2 separation-of-duties finding'),
 ('eu_residency_customer',     5, NULL, '{}', NULL, 'latest', NULL, NULL, '>', NULL, NULL, '0', 'eu_residency_customer',
  'declared: EU-residency customer signed'),
 ('apac_p99_over_us',          5, 'region_p99_ms', '{"region": "apac"}', NULL, 'ratio', '{"region": "us"}', NULL, '>', 1.5, NULL, '1 hour', NULL,
  'APAC p99 > 1.5x US p99 for 1 h'),
 ('webhook_deliveries',        6, 'webhook_deliveries_per_day', '{}', NULL, 'latest', NULL, NULL, '>', 1e6, NULL, '0', NULL,
  'webhook deliveries > 1M/day'),
 ('webhook_p99_over_slo',      6, 'webhook_receiver_p99_ms', '{}', NULL, 'all', NULL, NULL, '>', 2, 'webhook_slo_ms', '30 minutes', NULL,
  'webhook receiver p99 > 2x SLO for >= 30 min'),
 -- leading indicators and their alert thresholds
 ('replica_lag',               NULL, 'replica_lag_seconds', '{}', NULL, 'all', NULL, NULL, '>', 1, NULL, '15 minutes', NULL,
  'replica lag > 1 s sustained'),
 ('audit_growth',              NULL, 'table_rows_inserted', '{}', 'AuditEntry', 'growth', NULL, '30 days', '>', 1e6, NULL, '30 days', NULL,
  'AuditEntry growth > 1M rows/month'),
 ('event_growth',              NULL, 'table_rows_inserted', '{}', 'Event', 'growth', NULL, '30 days', '>', 5e6, NULL, '30 days', NULL,
  'Event growth > 5M rows/month'),
 ('sandbox_live_ratio',        NULL, 'sandbox_live_write_ratio', '{}', NULL, 'latest', NULL, NULL, '>', 100, NULL, '0', NULL,
  'sandbox-vs-live write ratio per org > 100x'),
 ('webhook_queue_depth',       NULL, 'webhook_queue_depth_p99', '{}', NULL, 'latest', NULL, NULL, '>', 1000, NULL, '0', NULL,
  'webhook queue depth p99 per endpoint > 1000'),
 ('kms_quota',                 NULL, 'kms_calls_per_min', '{}', NULL, 'latest', NULL, NULL, '>', 0.8, 'kms_quota_per_min', '0', NULL,
  'KMS call rate > 80% of quota'),
 ('cdc_lag',                   NULL, 'cdc_lag_p99_seconds', '{}', NULL, 'all', NULL, NULL, '>', 1, NULL, '5 minutes', NULL,
  'CDC lag p99 > 1 s for 5 min'),
 ('pool_utilization',          NULL, 'pool_utilization', '{}', NULL, 'all', NULL, NULL, '>', 80, NULL, '1 hour', NULL,
  'connection-pool utilisation per role > 80% sustained'),
 ('non_us_region_p99',         NULL, 'region_p99_ms', '{"region": "eu"}', NULL, 'ratio', '{"region": "us"}', NULL, '>', 1.5, NULL, '1 hour', NULL,
  'non-US region p99 > 1.5x US'),
 ('cost_per_request',          NULL, 'cost_per_request', '{}', NULL, 'latest', NULL, NULL, '>', 1.1, 'cost_budget_per_request', '0', NULL,
  'cost per request > 110% of budget'),
 ('cache_hit_ratio',           NULL, 'cache_hit_ratio', '{}', NULL, 'all', NULL, NULL, '<', 0.8, 'cache_hit_target', '1 hour', NULL,
  'cache hit ratio < 80% of target'),
 ('mcp_tool_call_outliers',    NULL, 'mcp_tool_calls_per_min', '{}', NULL, 'latest', NULL, NULL, '>', 1, 'mcp_tool_calls_per_min_limit', '0', NULL,
  'MCP tool-call rate per tier above its outlier limit'),
 ('deprecated_endpoints',      NULL, 'deprecated_endpoint_calls', '{}', NULL, 'latest', NULL, NULL, '>', 0, NULL, '0', NULL,
  'deprecated-endpoint usage > 0');

-- Plans (1.1): a plan is a named set of tiers (an ordered ladder), gates
-- (independent decisions), guardrails and alerts, each with conditions.
-- The shipped six-stage ladder is the plan 'matter-six-stage' (doc NULL:
-- its stages are capacity_stage_def and its triggers capacity_trigger);
-- every other plan is imported from a JSON document (45_plans.sql) and its
-- conditions are evaluated by the same capacity_trigger_eval.  Dump
-- registrations are at the end of 80_dump.sql.
CREATE TABLE @extschema@.capacity_plan (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]*$'),
    description text NOT NULL,
    doc         jsonb,                               -- the document imported (NULL: matter-six-stage)
    active      boolean NOT NULL DEFAULT false,      -- evaluated by capacity_stage() without a plan
    shipped     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE @extschema@.capacity_plan IS
    'Installed plans; the active one is what capacity_stage() evaluates when no plan is named.';

CREATE TABLE @extschema@.capacity_plan_step (
    plan        text NOT NULL REFERENCES @extschema@.capacity_plan ON DELETE CASCADE,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('tier', 'gate', 'guardrail', 'alert')),
    ordinal     integer NOT NULL,        -- tiers: rung of the ladder from 1; others: place in the document
    from_tier   text,                    -- tiers: the tier it is entered from (NULL: the first)
    one_way     boolean NOT NULL DEFAULT false,   -- tiers: never suggest moving back down
    runbook     text,
    description text NOT NULL DEFAULT '',
    PRIMARY KEY (plan, name)
);

-- A step's rule (enter, exit, checklist) holds when every condition of one
-- of its groups holds: groups are any-of, conditions in a group all-of.
CREATE TABLE @extschema@.capacity_plan_condition (
    plan              text NOT NULL,
    name              text NOT NULL,
    step              text NOT NULL,
    rule              text NOT NULL CHECK (rule IN ('enter', 'exit', 'checklist')),
    grp               integer NOT NULL,
    indicator         text,
    label_filter      jsonb NOT NULL DEFAULT '{}',
    bind_table        text,
    aggregate         text NOT NULL DEFAULT 'all'
                      CHECK (aggregate IN ('all', 'latest', 'growth', 'ratio', 'days')),
    ratio_filter      jsonb,
    per_period        interval,
    comparator        text NOT NULL DEFAULT '>' CHECK (comparator IN ('>', '>=', '<', '<=')),
    threshold         double precision,
    threshold_setting text,
    sustain           interval NOT NULL DEFAULT '0',
    days              integer CHECK (days BETWEEN 1 AND 366),  -- 'days': N consecutive UTC days
    daily             text CHECK (daily IN ('avg', 'max', 'min', 'p95')),  -- 'days': each day's aggregate
    declared_flag     text,
    description       text NOT NULL,
    PRIMARY KEY (plan, name),
    FOREIGN KEY (plan, step) REFERENCES @extschema@.capacity_plan_step ON DELETE CASCADE,
    CHECK ((declared_flag IS NULL) = (indicator IS NOT NULL)),
    CHECK (indicator IS NULL OR threshold IS NOT NULL),
    CHECK ((aggregate = 'days') = (days IS NOT NULL))
);

-- The daily rollup keeps an exact p95 for the indicators in
-- capacity_daily_p95 (30_indicators.sql): those a condition reads by p95,
-- kept in step here after every change of the conditions (an import or
-- removal of a plan, an edit by hand, a restore loading them), so the
-- rollup (rollup.c) never reads plans.  The table is small and the
-- conditions few: recomputed whole, once per statement.
CREATE FUNCTION @extschema@.capacity_daily_p95_sync()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM @extschema@.capacity_daily_p95 p
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.capacity_plan_condition c
                        WHERE c.daily = 'p95' AND c.indicator = p.indicator);
    INSERT INTO @extschema@.capacity_daily_p95 (indicator)
    SELECT DISTINCT c.indicator FROM @extschema@.capacity_plan_condition c
     WHERE c.daily = 'p95' AND c.indicator IS NOT NULL
    ON CONFLICT (indicator) DO NOTHING;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_daily_p95_sync() IS
    'Trigger: keeps capacity_daily_p95 (the indicators whose daily rollups keep a p95) equal to the indicators a plan condition reads by daily p95.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_daily_p95_sync() FROM PUBLIC;
CREATE TRIGGER capacity_daily_p95_sync AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.capacity_plan_condition
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.capacity_daily_p95_sync();

CREATE TABLE @extschema@.capacity_plan_tier_history (
    id          bigserial PRIMARY KEY,
    plan        text NOT NULL,
    tier        text NOT NULL,
    note        text,
    set_at      timestamptz NOT NULL,
    set_by      name NOT NULL
);

-- Shipped plan documents, installed by capacity_plan_install(name).
CREATE TABLE @extschema@.capacity_plan_preset (
    name        text PRIMARY KEY,
    doc         jsonb NOT NULL
);

-- The tier registry: where each moved tenant lives now.  Stage 4's
-- evidence (capacity_stage) counts it.
CREATE TABLE @extschema@.capacity_tenant_tier (
    tenant    text PRIMARY KEY,
    tier      text NOT NULL,                   -- the member's labels.tier, else 'dedicated'
    member    text NOT NULL,
    moved_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.capacity_tenant_tier IS
    'Tier registry: the tier and fleet member of every tenant moved off this database (written at cutover).';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_tenant_tier', '');
GRANT SELECT ON @extschema@.capacity_tenant_tier TO pg_monitor;
