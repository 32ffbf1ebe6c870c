-- matter_capacity install script, version 1.0.
-- Assembled by the Makefile from src/sql/*.sql in name order: one file per
-- concern.  Objects go into the schema chosen at CREATE EXTENSION.

\echo Use "CREATE EXTENSION matter_capacity" to load this file. \quit
-- Partition lifecycle: policies, the rollover log, and their functions.

CREATE TABLE @extschema@.capacity_policy (
    table_name        regclass PRIMARY KEY,
    time_column       name NOT NULL,
    granularity       text NOT NULL CHECK (granularity IN ('day', 'week', 'month')),
    hash_column       name,
    hash_partitions   integer CHECK (hash_partitions BETWEEN 2 AND 1024),
    premake           integer NOT NULL CHECK (premake BETWEEN 1 AND 1000),
    retention         interval,
    retention_action  text NOT NULL DEFAULT 'detach' CHECK (retention_action IN ('detach', 'drop')),
    default_partition boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((hash_column IS NULL) = (hash_partitions IS NULL))
);
COMMENT ON TABLE @extschema@.capacity_policy IS
    'One partition policy per managed table; written by capacity_manage().';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_policy', '');

-- History of every action a rollover took; table_name is text because the
-- table may be dropped later.
CREATE TABLE @extschema@.capacity_rollover_history (
    id              bigserial PRIMARY KEY,
    logged_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    as_of           timestamptz NOT NULL,
    table_oid       oid NOT NULL,
    table_name      text NOT NULL,
    action          text NOT NULL,
    partition_name  text,
    detail          text,
    duration_ms     double precision
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_rollover_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_rollover_history_id_seq', '');

-- Partitions retention has begun to retire with DETACH ... CONCURRENTLY and
-- is to drop.  The detach and the drop are separate transactions; a row
-- still here after a crash or a lock timeout between them tells the next
-- rollover of the table to finish the drop (rollover.c).  Not dumped: oids.
CREATE TABLE @extschema@.capacity_pending_drop (
    partition_oid  oid PRIMARY KEY,
    table_oid      oid NOT NULL,
    partition_name text NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION @extschema@.capacity_manage(
    tbl regclass,
    time_column name,
    granularity text,
    hash_column name DEFAULT NULL,
    hash_partitions integer DEFAULT NULL,
    premake integer DEFAULT 4,
    retention interval DEFAULT NULL,
    retention_action text DEFAULT 'detach',
    default_partition boolean DEFAULT true)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_manage';
COMMENT ON FUNCTION @extschema@.capacity_manage IS
    'Register or update the partition policy of a table declared PARTITION BY RANGE (time_column).';

CREATE FUNCTION @extschema@.capacity_rollover(
    tbl regclass DEFAULT NULL,
    as_of timestamptz DEFAULT now(),
    dry_run boolean DEFAULT false)
RETURNS TABLE(table_name regclass, action text, partition_name text, detail text)
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_rollover';
COMMENT ON FUNCTION @extschema@.capacity_rollover IS
    'Create partitions ahead, move rows out of the default partition, apply retention; one row per action.';

CREATE PROCEDURE @extschema@.capacity_rollover_proc(
    tbl regclass DEFAULT NULL,
    as_of timestamptz DEFAULT now(),
    dry_run boolean DEFAULT false)
LANGUAGE c
AS 'MODULE_PATHNAME', 'capacity_rollover_proc';
COMMENT ON PROCEDURE @extschema@.capacity_rollover_proc IS
    'capacity_rollover() committing after each period; actions are NOTICEs and rows of capacity_rollover_log.';

CREATE FUNCTION @extschema@.capacity_set_hash_partitions(
    tbl regclass,
    hash_partitions integer,
    as_of timestamptz DEFAULT now())
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_set_hash_partitions';
COMMENT ON FUNCTION @extschema@.capacity_set_hash_partitions IS
    'Partition-split runbook: new and empty future periods get this many hash partitions; data is never rewritten.';

CREATE FUNCTION @extschema@.capacity_partition_tree(tbl regclass)
RETURNS TABLE(partition_name regclass, parent_name regclass, level integer,
              range_from timestamptz, range_to timestamptz,
              hash_modulus integer, hash_remainder integer, is_default boolean)
LANGUAGE c STRICT STABLE
AS 'MODULE_PATHNAME', 'capacity_partition_tree';
COMMENT ON FUNCTION @extschema@.capacity_partition_tree IS
    'Every partition under a range-partitioned table with decoded bounds (any table, managed or not).';

CREATE FUNCTION @extschema@.capacity_partition_name(base text, granularity text, period_start timestamptz,
                                                    hash_remainder integer DEFAULT NULL,
                                                    hash_modulus integer DEFAULT NULL)
RETURNS text
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_partition_name';
COMMENT ON FUNCTION @extschema@.capacity_partition_name IS
    'The name the rollover gives the period partition of base containing period_start (or its hash leaf).';

CREATE FUNCTION @extschema@.capacity_period_start(t timestamptz, granularity text, n integer DEFAULT 0)
RETURNS timestamptz
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_period_start';
COMMENT ON FUNCTION @extschema@.capacity_period_start IS
    'Start (UTC) of the period containing t, moved n periods on, as the rollover computes it.';

CREATE FUNCTION @extschema@.capacity_time_literal(t timestamptz, typ regtype)
RETURNS text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_time_literal';
COMMENT ON FUNCTION @extschema@.capacity_time_literal IS
    't as a literal of a date/timestamp/timestamptz column (UTC), as partition bounds are written.';

CREATE FUNCTION @extschema@.capacity_partition_horizon()
RETURNS TABLE(table_name regclass, range_to timestamptz)
LANGUAGE c STRICT STABLE
AS 'MODULE_PATHNAME', 'capacity_partition_horizon';
COMMENT ON FUNCTION @extschema@.capacity_partition_horizon IS
    'Upper bound of the newest partition of every time-range-partitioned table (partition runway).';

CREATE VIEW @extschema@.capacity_policies AS
SELECT p.table_name, p.time_column, p.granularity, p.hash_column, p.hash_partitions,
       p.premake, p.retention, p.retention_action, p.default_partition,
       p.created_at, p.updated_at
  FROM @extschema@.capacity_policy p;

CREATE VIEW @extschema@.capacity_partitions AS
SELECT p.table_name, t.partition_name, t.parent_name, t.level,
       t.range_from, t.range_to, t.hash_modulus, t.hash_remainder, t.is_default,
       (SELECT pg_catalog.sum(GREATEST(c.reltuples, 0))::bigint
          FROM pg_catalog.pg_partition_tree(t.partition_name) pt
          JOIN pg_catalog.pg_class c ON c.oid = pt.relid
         WHERE pt.isleaf) AS est_rows,
       (SELECT pg_catalog.sum(pg_catalog.pg_total_relation_size(pt.relid))::bigint
          FROM pg_catalog.pg_partition_tree(t.partition_name) pt
         WHERE pt.isleaf) AS total_bytes
  FROM @extschema@.capacity_policy p,
       LATERAL @extschema@.capacity_partition_tree(p.table_name) t;

CREATE VIEW @extschema@.capacity_rollover_log AS
SELECT h.id, h.logged_at, h.as_of, h.table_name, h.action, h.partition_name,
       h.detail, h.duration_ms
  FROM @extschema@.capacity_rollover_history h;
-- A managed table that is dropped takes its policy (and its conversion
-- record) with it, so no rollover ever looks for it again.  SECURITY DEFINER because the dropping
-- role has no rights on our catalog; the search_path is pinned so nothing
-- on the caller's path is ever resolved here.

CREATE FUNCTION @extschema@.capacity_forget_dropped_tables()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM @extschema@.capacity_policy p
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND p.table_name::pg_catalog.oid = d.objid;
    -- conversions (60_convert.sql) of dropped tables, and dropped old tables
    DELETE FROM @extschema@.capacity_conversion c
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND c.table_name::pg_catalog.oid = d.objid;
    UPDATE @extschema@.capacity_conversion c SET historical = NULL
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND c.historical::pg_catalog.oid = d.objid;
END
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_forget_dropped_tables() FROM PUBLIC;

CREATE EVENT TRIGGER capacity_forget_dropped_tables ON sql_drop
    WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION @extschema@.capacity_forget_dropped_tables();
-- Indicators: what is measured, the samples, their hourly rollups.

CREATE TABLE @extschema@.capacity_indicator (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    unit        text,
    source      text NOT NULL CHECK (source IN ('builtin', 'sql', 'push')),
    query       text,
    description text,
    enabled     boolean NOT NULL DEFAULT true,
    owner       regrole,
    search_path text,           -- probes run with the search_path they were registered under
    shipped     boolean NOT NULL DEFAULT false,   -- as installed, unedited (80_dump.sql)
    CHECK ((source = 'sql') = (query IS NOT NULL))
);
COMMENT ON TABLE @extschema@.capacity_indicator IS
    'Every indicator: built in (measured by capacity_sample_now), sql (a registered probe) or push (capacity_record).';

-- Raw samples: partitioned by day and rolled over by the extension's own
-- partition engine (retention matter_capacity.sample_retention_days).
CREATE TABLE @extschema@.capacity_sample (
    indicator  text NOT NULL,
    labels     jsonb NOT NULL DEFAULT '{}',
    sampled_at timestamptz NOT NULL,
    value      double precision
) PARTITION BY RANGE (sampled_at);
-- No index on the parent: the sampler indexes each day partition it makes
-- (sampler.c), because pg_restore would otherwise build the dumped
-- partitions' indexes twice.
-- The default partition gives a value pushed before the first sampling a
-- place; the rollover at each sampling creates the day partitions and moves
-- such rows out.
CREATE TABLE @extschema@.capacity_sample_default PARTITION OF @extschema@.capacity_sample DEFAULT;
CREATE INDEX ON @extschema@.capacity_sample_default (indicator, sampled_at);

-- Hourly rollups for long history (matter_capacity.rollup_retention_days).
CREATE TABLE @extschema@.capacity_sample_hourly (
    indicator  text NOT NULL,
    labels     jsonb NOT NULL,
    hour       timestamptz NOT NULL,
    min        double precision,
    max        double precision,
    avg        double precision,
    last       double precision,
    count      bigint NOT NULL,
    PRIMARY KEY (indicator, labels, hour)
);

-- Daily rollups of the hourly ones, what forecasts are fitted on: the
-- day's extremes, and its best and worst hours (a sustained trigger
-- breaches when a whole hour does).  Recomputed from the hourly rollups
-- by capacity_roll_up_days(); kept as long as those.
CREATE TABLE @extschema@.capacity_sample_daily (
    indicator       text NOT NULL,
    labels          jsonb NOT NULL,
    day             timestamptz NOT NULL,      -- 00:00 UTC
    min             double precision,
    max             double precision,
    avg             double precision,          -- weighted by samples
    last            double precision,          -- of the day's last hour
    count           bigint NOT NULL,
    peak_hour_min   double precision,          -- highest hourly minimum
    trough_hour_max double precision,          -- lowest hourly maximum
    peak_hour_avg   double precision,
    trough_hour_avg double precision,
    PRIMARY KEY (indicator, labels, day)
);
CREATE INDEX ON @extschema@.capacity_sample_daily (day);

-- The newest sample of each series, kept current on every write so that
-- reading "now" never scans history.
CREATE TABLE @extschema@.capacity_latest_sample (
    indicator  text NOT NULL,
    labels     jsonb NOT NULL,
    sampled_at timestamptz NOT NULL,
    value      double precision,
    PRIMARY KEY (indicator, labels)
);

-- Cumulative counters seen at the previous sample, to derive rates.
CREATE TABLE @extschema@.capacity_counter (
    name        text NOT NULL,
    labels      jsonb NOT NULL,
    value       double precision NOT NULL,
    observed_at timestamptz NOT NULL,
    epoch       text,               -- stats_reset or postmaster start: a change means reset
    PRIMARY KEY (name, labels)
);

-- Last run of each indicator: ok or the error, for capacity_indicator_status.
CREATE TABLE @extschema@.capacity_indicator_run (
    indicator     text PRIMARY KEY,
    last_run      timestamptz NOT NULL,
    last_ok       timestamptz,
    samples       integer NOT NULL DEFAULT 0,
    last_error    text,
    last_error_at timestamptz
);

-- Per-role pool size overrides for pool_utilization.
CREATE TABLE @extschema@.capacity_pool_size (
    role_name  regrole PRIMARY KEY,
    pool_size  integer NOT NULL CHECK (pool_size > 0)
);

INSERT INTO @extschema@.capacity_indicator (name, unit, source, description) VALUES
 ('table_rows',                 'rows',    'builtin', 'Live rows of each partitioned table (statistics), labels {table}'),
 ('table_rows_inserted',        'rows',    'builtin', 'Rows ever inserted into each partitioned table (cumulative counter), labels {table}'),
 ('table_bytes',                'bytes',   'builtin', 'Total size with indexes and TOAST of each partitioned table, labels {table}'),
 ('default_partition_rows',     'rows',    'builtin', 'Rows in the default partition of each partitioned table, labels {table}'),
 ('partition_runway_days',      'days',    'builtin', 'Days until the newest partition''s upper bound, labels {table}'),
 ('connections',                'count',   'builtin', 'Client connections per role, labels {role}'),
 ('pool_utilization',           'percent', 'builtin', 'Connections of a role over its limit (connection limit, capacity_set_pool_size, else max_connections less reserved), labels {role}'),
 ('connections_utilization',    'percent', 'builtin', 'All client connections over max_connections less reserved slots'),
 ('replica_lag_seconds',        'seconds', 'builtin', 'Replay lag of each streaming standby, labels {application_name}'),
 ('replication_slot_lag_bytes', 'bytes',   'builtin', 'WAL retained for each replication slot, labels {slot}'),
 ('read_qps',                   'per second', 'builtin', 'Read statements per second (executor hooks; needs shared_preload_libraries)'),
 ('write_qps',                  'per second', 'builtin', 'Write statements per second (executor hooks; needs shared_preload_libraries)'),
 ('read_latency_p50_ms',        'ms',      'builtin', 'Median read statement latency (executor hooks)'),
 ('read_latency_p95_ms',        'ms',      'builtin', '95th percentile read statement latency (executor hooks)'),
 ('read_latency_p99_ms',        'ms',      'builtin', '99th percentile read statement latency (executor hooks)'),
 ('write_latency_p50_ms',       'ms',      'builtin', 'Median write statement latency (executor hooks)'),
 ('write_latency_p95_ms',       'ms',      'builtin', '95th percentile write statement latency (executor hooks)'),
 ('write_latency_p99_ms',       'ms',      'builtin', '99th percentile write statement latency (executor hooks)'),
 ('cache_hit_ratio',            'ratio',   'builtin', 'Buffer cache hits over reads of this database between two samples (0..1)'),
 ('cpu_utilization',            'percent', 'builtin', 'Host CPU busy time between two samples, from /proc/stat; NULL where unavailable'),
 ('database_bytes',             'bytes',   'builtin', 'Size of this database');

CREATE VIEW @extschema@.capacity_latest AS
SELECT l.indicator, l.labels, l.sampled_at, l.value, i.unit, i.source
  FROM @extschema@.capacity_latest_sample l
  LEFT JOIN @extschema@.capacity_indicator i ON i.name = l.indicator;

CREATE VIEW @extschema@.capacity_indicator_status AS
SELECT i.name AS indicator, i.source, i.unit, i.enabled, i.owner,
       r.last_run, r.last_ok, r.samples AS last_samples, r.last_error, r.last_error_at,
       (SELECT pg_catalog.max(l.sampled_at) FROM @extschema@.capacity_latest_sample l
         WHERE l.indicator = i.name) AS last_sampled_at,
       (SELECT pg_catalog.count(*) FROM @extschema@.capacity_latest_sample l
         WHERE l.indicator = i.name) AS series
  FROM @extschema@.capacity_indicator i
  LEFT JOIN @extschema@.capacity_indicator_run r ON r.indicator = i.name;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_sample_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_sample_daily', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_pool_size', '');
-- Indicator functions: sampling, pushing, registering.

CREATE FUNCTION @extschema@.capacity_sample_now(as_of timestamptz DEFAULT now())
RETURNS integer
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_sample_now';
COMMENT ON FUNCTION @extschema@.capacity_sample_now IS
    'Sample every enabled built-in indicator and probe once; returns the number of samples written.';

CREATE FUNCTION @extschema@.capacity_register_probe(indicator text, query text, unit text DEFAULT NULL)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_register_probe';
COMMENT ON FUNCTION @extschema@.capacity_register_probe IS
    'Register a probe: a single SELECT returning one number or (labels jsonb, value) rows, run as its owner.';

-- An indicator only the application can see (webhook p99, KMS call rate ...).
CREATE FUNCTION @extschema@.capacity_register_push(indicator text, unit text DEFAULT NULL,
                                                   description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    existing text;
BEGIN
    IF indicator IS NULL OR indicator !~ '^[a-z][a-z0-9_]*$' OR length(indicator) > 63 THEN
        RAISE EXCEPTION 'matter_capacity: indicator name "%" is not valid', indicator
            USING ERRCODE = '42602',
                  HINT = 'Use lower-case letters, digits and underscores, starting with a letter, e.g. webhook_p99_ms.';
    END IF;
    SELECT i.source INTO existing FROM @extschema@.capacity_indicator i WHERE i.name = indicator;
    IF existing IS NOT NULL AND existing <> 'push' THEN
        RAISE EXCEPTION 'matter_capacity: indicator % already exists as a % indicator', indicator, existing
            USING ERRCODE = '42710', HINT = 'Choose another name for the pushed indicator.';
    END IF;
    -- unit and description are kept when not given; spelled out before the
    -- INSERT because a shipped row is replaced by it (80_dump.sql)
    IF existing IS NOT NULL THEN
        SELECT coalesce(capacity_register_push.unit, i.unit), coalesce(capacity_register_push.description, i.description)
          INTO unit, description
          FROM @extschema@.capacity_indicator i WHERE i.name = indicator;
    END IF;
    INSERT INTO @extschema@.capacity_indicator AS i (name, unit, source, description, owner)
    VALUES (indicator, unit, 'push', description, current_user::regrole)
    ON CONFLICT (name) DO UPDATE
       SET unit = coalesce(EXCLUDED.unit, i.unit),
           description = coalesce(EXCLUDED.description, i.description);
END
$$;

CREATE FUNCTION @extschema@.capacity_record(indicator text, value double precision,
                                            labels jsonb DEFAULT '{}',
                                            sampled_at timestamptz DEFAULT now())
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text;
BEGIN
    SELECT i.source INTO kind FROM @extschema@.capacity_indicator i WHERE i.name = indicator;
    IF kind IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: indicator "%" does not exist', indicator
            USING ERRCODE = '42704', HINT = 'Declare it first with capacity_register_push(indicator, unit).';
    ELSIF kind <> 'push' THEN
        RAISE EXCEPTION 'matter_capacity: indicator % is a % indicator and cannot be pushed', indicator, kind
            USING ERRCODE = '42809', HINT = 'Only indicators declared with capacity_register_push() accept values.';
    END IF;
    IF value IS NULL OR value = 'NaN'::float8 OR value IN ('Infinity'::float8, '-Infinity'::float8) THEN
        RAISE EXCEPTION 'matter_capacity: value % for indicator % is not a finite number', value, indicator
            USING ERRCODE = '22023', HINT = 'Push finite numbers only; skip a measurement you do not have.';
    END IF;
    IF labels IS NULL OR jsonb_typeof(labels) <> 'object' THEN
        RAISE EXCEPTION 'matter_capacity: labels for indicator % must be a JSON object', indicator
            USING ERRCODE = '22023', HINT = 'Pass labels like ''{"region": "eu-west-1"}''::jsonb, or ''{}''.';
    END IF;
    IF sampled_at IS NULL OR NOT isfinite(sampled_at) THEN
        RAISE EXCEPTION 'matter_capacity: sampled_at for indicator % must be a finite time', indicator
            USING ERRCODE = '22008', HINT = 'Omit it to use now().';
    END IF;
    INSERT INTO @extschema@.capacity_sample (indicator, labels, sampled_at, value)
    VALUES (indicator, labels, sampled_at, value);
    INSERT INTO @extschema@.capacity_latest_sample AS l (indicator, labels, sampled_at, value)
    VALUES (indicator, labels, sampled_at, value)
    ON CONFLICT ON CONSTRAINT capacity_latest_sample_pkey DO UPDATE
       SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value
     WHERE l.sampled_at <= EXCLUDED.sampled_at;
END
$$;

-- Pool size of a role for pool_utilization (NULL removes the override).
CREATE FUNCTION @extschema@.capacity_set_pool_size(role_name regrole, pool_size integer)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role_name IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: role must not be NULL'
            USING ERRCODE = '22004', HINT = 'Name the role whose pool size you set.';
    END IF;
    IF pool_size IS NULL THEN
        DELETE FROM @extschema@.capacity_pool_size p WHERE p.role_name = capacity_set_pool_size.role_name;
    ELSIF pool_size < 1 THEN
        RAISE EXCEPTION 'matter_capacity: pool size % for role % must be positive', pool_size, role_name
            USING ERRCODE = '22023', HINT = 'Pass the number of server connections the role''s pool may open.';
    ELSE
        INSERT INTO @extschema@.capacity_pool_size AS p VALUES (role_name, pool_size)
        ON CONFLICT ON CONSTRAINT capacity_pool_size_pkey DO UPDATE SET pool_size = EXCLUDED.pool_size;
    END IF;
END
$$;

-- Recompute the daily rollups of the UTC days that from_ts .. to_ts
-- touches from the hourly rollups (the sampler calls it for the last two
-- hours; call it over a range after loading or correcting hourly history).
CREATE FUNCTION @extschema@.capacity_roll_up_days(from_ts timestamptz, to_ts timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    origin constant timestamptz := '2000-01-01 00:00+00';
    lo timestamptz := date_bin('1 day', from_ts, origin);
    hi timestamptz := date_bin('1 day', to_ts, origin) + interval '1 day';
    n bigint;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) OR from_ts > to_ts THEN
        RAISE EXCEPTION 'matter_capacity: % .. % is not a range of finite times', from_ts, to_ts
            USING ERRCODE = '22023', HINT = 'Pass from_ts <= to_ts, e.g. now() - interval ''30 days'', now().';
    END IF;
    DELETE FROM @extschema@.capacity_sample_daily d WHERE d.day >= lo AND d.day < hi;
    INSERT INTO @extschema@.capacity_sample_daily AS d
    SELECT h.indicator, h.labels, date_bin('1 day', h.hour, origin),
           min(h.min), max(h.max), sum(h.avg * h.count) / nullif(sum(h.count), 0),
           (max(ARRAY[extract(epoch FROM h.hour)::float8, h.last]))[2], sum(h.count),
           max(h.min), min(h.max), max(h.avg), min(h.avg)
      FROM @extschema@.capacity_sample_hourly h
     WHERE h.hour >= lo AND h.hour < hi
     GROUP BY 1, 2, 3
    ON CONFLICT (indicator, labels, day) DO UPDATE
       SET min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg, last = EXCLUDED.last,
           count = EXCLUDED.count, peak_hour_min = EXCLUDED.peak_hour_min,
           trough_hour_max = EXCLUDED.trough_hour_max, peak_hour_avg = EXCLUDED.peak_hour_avg,
           trough_hour_avg = EXCLUDED.trough_hour_avg;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_roll_up_days IS
    'Recompute the daily rollups (what forecasts fit) of the days from_ts .. to_ts touches from the hourly rollups.';
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
    decided_by        name NOT NULL
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
-- Stage evaluation.  The logic is set-based, so it is SQL.  Public entry
-- points are thin wrappers: they resolve the logical hot tables on the
-- caller's search path (capacity_bindings) and hand them to internal
-- functions that run with search_path pinned to pg_catalog.

-- {"Event": oid, "AuditEntry": oid} as bound, or found by name on the
-- caller's search path.
CREATE FUNCTION @extschema@.capacity_bindings()
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT COALESCE(pg_catalog.jsonb_object_agg(b.logical_name,
               COALESCE(b.table_name, pg_catalog.to_regclass(pg_catalog.quote_ident(b.logical_name)))::pg_catalog.oid),
           '{}'::jsonb)
      FROM @extschema@.capacity_table_binding b
$$;

-- Each trigger with its effective threshold (times its SLO setting) and
-- the label filter its series must match: a bound hot table adds
-- {"table": name}.  Shared by the evaluation and the forecast.
CREATE FUNCTION @extschema@.capacity_trigger_resolved(bindings jsonb)
RETURNS TABLE(name text, stage integer, indicator text, label_filter jsonb, aggregate text,
              ratio_filter jsonb, per_period interval, comparator text, sustain interval,
              declared_flag text, description text, eff_threshold double precision,
              thr_default boolean, filter jsonb, unbound boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.name, t.stage, t.indicator, t.label_filter, t.aggregate, t.ratio_filter,
           t.per_period, t.comparator, t.sustain, t.declared_flag, t.description,
           t.threshold * coalesce(s.value, 1),
           (t.threshold_setting IS NOT NULL AND s.value = s.default_value),
           CASE WHEN t.bind_table IS NULL THEN t.label_filter
                ELSE t.label_filter || jsonb_build_object('table',
                       ((bindings ->> t.bind_table)::oid)::regclass::text) END,
           (t.bind_table IS NOT NULL AND bindings ->> t.bind_table IS NULL)
      FROM @extschema@.capacity_trigger t
      LEFT JOIN @extschema@.capacity_setting s ON s.name = t.threshold_setting
$$;

-- One trigger on one series at as_of.
CREATE TYPE @extschema@.capacity_trigger_row AS (
    trigger_name text, stage integer, indicator text, labels jsonb,
    value double precision, deciding_value double precision,
    threshold double precision, threshold_is_default boolean,
    comparator text, sustain interval, samples bigint,
    window_start timestamptz, status text, description text);

-- First and last value of a cumulative counter in a growth window.
CREATE TYPE @extschema@.capacity_growth_point AS (
    name text, labels jsonb, first_at timestamptz, first_v double precision,
    last_at timestamptz, last_v double precision);

-- One row per trigger and series: its value, threshold and status at as_of.
--
-- Samples are read first, by statements planned with their bound values
-- (EXECUTE ... USING), so capacity_sample is pruned to the one or two day
-- partitions the windows touch: one scan for every window of an hour or
-- so, and two short index probes per growth series (first and last value
-- of the counter).  The set logic then runs over those arrays with a
-- cached plan.
CREATE FUNCTION @extschema@.capacity_trigger_eval(as_of timestamptz, bindings jsonb)
RETURNS SETOF @extschema@.capacity_trigger_row
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    maxwin interval;
    inds text[];
    lo timestamptz;
    hi timestamptz;
    w @extschema@.capacity_sample[];
    gr @extschema@.capacity_growth_point[] := '{}';
    gt record;
    gs record;
    fp record;
    lp record;
BEGIN
    SELECT coalesce(max(greatest(tr.sustain, interval '1 hour')), interval '1 hour'),
           array_agg(DISTINCT tr.indicator)
      INTO maxwin, inds
      FROM @extschema@.capacity_trigger tr
     WHERE tr.indicator IS NOT NULL AND tr.aggregate <> 'growth';
    lo := as_of - maxwin;
    -- EXECUTE ... USING plans once with the values: the bounds prune
    EXECUTE 'SELECT array_agg(s) FROM @extschema@.capacity_sample s
              WHERE s.indicator = ANY ($1) AND s.sampled_at > $2 AND s.sampled_at <= $3'
       INTO w USING inds, lo, as_of;
    w := coalesce(w, '{}');

    FOR gt IN SELECT tr.name, tr.indicator, tr.sustain,
                    greatest(tr.sustain * 0.1, interval '2 minutes') AS tol, tr.filter
               FROM @extschema@.capacity_trigger_resolved(bindings) tr
              WHERE tr.aggregate = 'growth' AND NOT tr.unbound
    LOOP
        FOR gs IN SELECT ls.labels FROM @extschema@.capacity_latest_sample ls
                  WHERE ls.indicator = gt.indicator AND ls.labels @> gt.filter
        LOOP
            lo := as_of - gt.sustain - gt.tol;
            hi := least(as_of - gt.sustain + gt.tol, as_of);
            EXECUTE 'SELECT s.sampled_at, s.value FROM @extschema@.capacity_sample s
                      WHERE s.indicator = $1 AND s.labels = $2 AND s.sampled_at >= $3 AND s.sampled_at <= $4
                      ORDER BY s.sampled_at LIMIT 1'
               INTO fp USING gt.indicator, gs.labels, lo, hi;
            lo := as_of - gt.tol;
            EXECUTE 'SELECT s.sampled_at, s.value FROM @extschema@.capacity_sample s
                      WHERE s.indicator = $1 AND s.labels = $2 AND s.sampled_at >= $3 AND s.sampled_at <= $4
                      ORDER BY s.sampled_at DESC LIMIT 1'
               INTO lp USING gt.indicator, gs.labels, lo, as_of;
            gr := gr || ROW(gt.name, gs.labels, fp.sampled_at, fp.value, lp.sampled_at, lp.value)::@extschema@.capacity_growth_point;
        END LOOP;
    END LOOP;

    RETURN QUERY
WITH ws AS MATERIALIZED (SELECT * FROM unnest(w)),
trig AS (
    SELECT t.*, greatest(t.sustain * 0.1, interval '2 minutes') AS tol
      FROM @extschema@.capacity_trigger_resolved(bindings) t
),
series AS (   -- every series a metric trigger looks at
    SELECT t.name, l.labels
      FROM trig t JOIN @extschema@.capacity_latest_sample l
        ON l.indicator = t.indicator AND l.labels @> t.filter
     WHERE t.indicator IS NOT NULL AND NOT t.unbound
),
breach AS (   -- 'all' and 'latest': the samples of the window, per series
    SELECT t.name, x.labels, count(*) AS n, min(s.sampled_at) AS first_at, max(s.sampled_at) AS last_at,
           (array_agg(s.value ORDER BY s.sampled_at DESC))[1] AS last_value,
           CASE WHEN t.comparator IN ('>', '>=') THEN min(s.value) ELSE max(s.value) END AS deciding,
           bool_and(CASE t.comparator WHEN '>' THEN s.value > t.eff_threshold
                                      WHEN '>=' THEN s.value >= t.eff_threshold
                                      WHEN '<' THEN s.value < t.eff_threshold
                                      ELSE s.value <= t.eff_threshold END) AS all_breach,
           (array_agg(CASE t.comparator WHEN '>' THEN s.value > t.eff_threshold
                                        WHEN '>=' THEN s.value >= t.eff_threshold
                                        WHEN '<' THEN s.value < t.eff_threshold
                                        ELSE s.value <= t.eff_threshold END
                      ORDER BY s.sampled_at DESC))[1] AS last_breach
      FROM trig t
      JOIN series x ON x.name = t.name
      JOIN ws s
        ON s.indicator = t.indicator AND s.labels = x.labels AND s.sampled_at <= as_of
       AND s.sampled_at > as_of - CASE WHEN t.aggregate = 'latest' THEN interval '1 hour' ELSE t.sustain END
     WHERE t.aggregate IN ('all', 'latest')
     GROUP BY t.name, t.comparator, x.labels
),
growth AS (   -- 'growth': first and last value of a cumulative counter (read above)
    SELECT g.name, g.labels, g.first_at, g.first_v, g.last_at, g.last_v FROM unnest(gr) g
),
ratio AS (    -- 'ratio': window averages of the series and of the reference series, one pass
    SELECT t.name, t.label_filter AS labels,
           avg(s.value) FILTER (WHERE s.labels @> t.label_filter) AS num,
           avg(s.value) FILTER (WHERE s.labels @> t.ratio_filter) AS den,
           count(*) FILTER (WHERE s.labels @> t.label_filter OR s.labels @> t.ratio_filter) AS n,
           greatest(min(s.sampled_at) FILTER (WHERE s.labels @> t.label_filter),
                    min(s.sampled_at) FILTER (WHERE s.labels @> t.ratio_filter)) AS first_at
      FROM trig t
      LEFT JOIN ws s ON s.indicator = t.indicator
                    AND s.sampled_at > as_of - t.sustain AND s.sampled_at <= as_of
     WHERE t.aggregate = 'ratio'
     GROUP BY t.name, t.label_filter
),
rows AS (
    -- declared triggers
    SELECT t.name, NULL::jsonb AS labels, NULL::float8 AS value, NULL::float8 AS deciding,
           NULL::bigint AS n, NULL::timestamptz AS window_start,
           CASE WHEN coalesce(d.active, false) THEN 'firing' ELSE 'not declared' END AS status
      FROM trig t LEFT JOIN @extschema@.capacity_declaration d ON d.flag = t.declared_flag
     WHERE t.declared_flag IS NOT NULL
    UNION ALL
    SELECT b.name, b.labels, b.last_value, b.deciding, b.n, b.first_at,
           CASE WHEN t.aggregate = 'latest' THEN
                     CASE WHEN b.last_breach THEN 'firing' ELSE 'ok' END
                WHEN b.n < 2 OR b.first_at > as_of - t.sustain + t.tol OR b.last_at < as_of - t.tol
                     THEN 'insufficient data'
                WHEN b.all_breach THEN 'firing' ELSE 'ok' END
      FROM breach b JOIN trig t ON t.name = b.name
    UNION ALL
    SELECT g.name, g.labels,
           (g.last_v - g.first_v) / nullif(extract(epoch FROM g.last_at - g.first_at), 0)
               * extract(epoch FROM t.per_period),
           NULL, 2, g.first_at,
           CASE WHEN g.first_at IS NULL OR g.last_at IS NULL OR g.first_at = g.last_at
                     OR g.first_at > as_of - t.sustain + t.tol OR g.last_at < as_of - t.tol
                     OR g.last_v < g.first_v THEN 'insufficient data'
                WHEN CASE t.comparator WHEN '>' THEN (g.last_v - g.first_v) / extract(epoch FROM g.last_at - g.first_at) * extract(epoch FROM t.per_period) > t.eff_threshold
                                       WHEN '>=' THEN (g.last_v - g.first_v) / extract(epoch FROM g.last_at - g.first_at) * extract(epoch FROM t.per_period) >= t.eff_threshold
                                       WHEN '<' THEN (g.last_v - g.first_v) / extract(epoch FROM g.last_at - g.first_at) * extract(epoch FROM t.per_period) < t.eff_threshold
                                       ELSE (g.last_v - g.first_v) / extract(epoch FROM g.last_at - g.first_at) * extract(epoch FROM t.per_period) <= t.eff_threshold END
                     THEN 'firing' ELSE 'ok' END
      FROM growth g JOIN trig t ON t.name = g.name
    UNION ALL
    SELECT r.name, r.labels, r.num / nullif(r.den, 0), NULL, r.n, r.first_at,
           CASE WHEN r.num IS NULL OR r.den IS NULL OR r.den = 0 OR r.first_at > as_of - t.sustain + t.tol
                     THEN 'insufficient data'
                WHEN CASE t.comparator WHEN '>' THEN r.num / r.den > t.eff_threshold
                                       WHEN '>=' THEN r.num / r.den >= t.eff_threshold
                                       WHEN '<' THEN r.num / r.den < t.eff_threshold
                                       ELSE r.num / r.den <= t.eff_threshold END
                     THEN 'firing' ELSE 'ok' END
      FROM ratio r JOIN trig t ON t.name = r.name
    UNION ALL
    -- series that exist but have no sample in the window
    SELECT x.name, x.labels, NULL, NULL, 0, NULL, 'insufficient data'
      FROM series x JOIN trig t ON t.name = x.name
     WHERE t.aggregate IN ('all', 'latest')
       AND NOT EXISTS (SELECT 1 FROM breach b WHERE b.name = x.name AND b.labels = x.labels)
    UNION ALL
    -- metric triggers with no series at all
    SELECT t.name, t.filter, NULL, NULL, 0, NULL,
           CASE WHEN t.unbound THEN 'insufficient data (table not bound)' ELSE 'insufficient data' END
      FROM trig t
     WHERE t.indicator IS NOT NULL AND t.aggregate <> 'ratio'
       AND NOT EXISTS (SELECT 1 FROM series x WHERE x.name = t.name)
)
SELECT r.name, t.stage, t.indicator, r.labels, r.value, r.deciding, t.eff_threshold,
       t.thr_default, t.comparator, t.sustain, r.n, r.window_start, r.status, t.description
  FROM rows r JOIN trig t ON t.name = r.name;
END
$fn$;

-- The evaluation behind capacity_stage().
CREATE FUNCTION @extschema@.capacity_stage_eval(as_of timestamptz, bindings jsonb,
                                                horizon interval DEFAULT '6 months')
RETURNS TABLE(current_stage integer, current_name text, recommended_stage integer,
              recommended_name text, decision text, firing text[], evidence jsonb,
              runbook text, evaluated_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cur integer;
    rec integer;
    fired text[];
    contradictions text[] := '{}';
    insufficient text[];
    ev jsonb;
    rows @extschema@.capacity_trigger_row[];
    fc @extschema@.capacity_forecast_row[];
    planned text[];
    plan_stage integer;
    event_rel oid := (bindings ->> 'Event')::oid;
    audit_rel oid := (bindings ->> 'AuditEntry')::oid;
BEGIN
    SELECT h.stage INTO cur FROM @extschema@.capacity_stage_history h
     WHERE h.set_at <= as_of ORDER BY h.set_at DESC, h.id DESC LIMIT 1;
    cur := coalesce(cur, 1);

    rows := ARRAY(SELECT e FROM @extschema@.capacity_trigger_eval(as_of, bindings) e
                   WHERE e.stage IS NOT NULL);
    -- entry triggers of the stages ahead projected to fire within the horizon
    fc := ARRAY(SELECT f FROM @extschema@.capacity_forecast_eval(as_of, horizon, bindings, rows, cur + 1) f
                 WHERE f.status = 'forecast');

    -- per trigger: firing if any series fires; insufficient if none fires
    -- and none has enough data
    SELECT array_agg(t.trigger_name ORDER BY t.stage, t.trigger_name), max(t.stage)
      INTO fired, rec
      FROM (SELECT e.trigger_name, e.stage FROM unnest(rows) e
             WHERE e.stage > cur GROUP BY 1, 2 HAVING bool_or(e.status = 'firing')) t;

    SELECT array_agg(t.trigger_name ORDER BY t.trigger_name) INTO insufficient
      FROM (SELECT e.trigger_name FROM unnest(rows) e
             WHERE e.stage = cur + 1 GROUP BY 1
            HAVING NOT bool_or(e.status IN ('firing', 'ok', 'not declared'))) t;

    -- what the database shows against what was declared
    IF cur >= 2 AND NOT EXISTS (SELECT 1 FROM pg_stat_replication r WHERE r.state = 'streaming') THEN
        contradictions := contradictions || 'stage 2+ declared but no streaming standby is connected'::text;
    END IF;
    IF cur >= 3 THEN
        IF event_rel IS NULL OR NOT EXISTS (
               SELECT 1 FROM pg_class c JOIN @extschema@.capacity_policy p ON p.table_name::oid = c.oid
                WHERE c.oid = event_rel AND c.relkind = 'p') THEN
            contradictions := contradictions || 'stage 3+ declared but Event is not a managed partitioned table'::text;
        END IF;
        IF audit_rel IS NULL OR NOT EXISTS (
               SELECT 1 FROM pg_class c JOIN @extschema@.capacity_policy p ON p.table_name::oid = c.oid
                WHERE c.oid = audit_rel AND c.relkind = 'p') THEN
            contradictions := contradictions || 'stage 3+ declared but AuditEntry is not a managed partitioned table'::text;
        END IF;
    END IF;

    -- per trigger, its earliest series; the plan is for the stage due first
    SELECT array_agg(f.trigger_name ORDER BY f.eta, f.stage, f.trigger_name),
           (array_agg(f.stage ORDER BY f.eta, f.stage))[1]
      INTO planned, plan_stage
      FROM (SELECT DISTINCT ON (x.trigger_name) x.* FROM unnest(fc) x
             ORDER BY x.trigger_name, x.eta) f;

    SELECT jsonb_build_object(
             'triggers', coalesce(jsonb_object_agg(x.trigger_name, x.detail), '{}'),
             'contradictions', to_jsonb(contradictions),
             'insufficient_data', to_jsonb(coalesce(insufficient, '{}'::text[])),
             'forecasts', (SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                                 'trigger', f.trigger_name, 'stage', f.stage, 'labels', f.labels,
                                 'eta', f.eta, 'days_left', f.days_left,
                                 'eta_earliest', f.eta_earliest, 'eta_latest', f.eta_latest,
                                 'method', f.method, 'value', f.current_value,
                                 'threshold', f.threshold)) ORDER BY f.eta, f.trigger_name), '[]')
                             FROM unnest(fc) f),
             'horizon_end', as_of + horizon)
      INTO ev
      FROM (SELECT e.trigger_name,
                   jsonb_build_object('stage', min(e.stage),
                     'status', CASE WHEN bool_or(e.status = 'firing') THEN 'firing'
                                    WHEN bool_or(e.status = 'ok') THEN 'ok'
                                    ELSE min(e.status) END,
                     'series', jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                         'labels', e.labels, 'value', e.value, 'deciding_value', e.deciding_value,
                         'threshold', e.threshold, 'threshold_is_default', e.threshold_is_default,
                         'window', e.sustain::text, 'samples', e.samples,
                         'window_start', e.window_start, 'status', e.status))
                       ORDER BY e.labels::text)) AS detail
              FROM unnest(rows) e WHERE e.stage > cur
             GROUP BY e.trigger_name) x;

    current_stage := cur;
    SELECT d.name INTO current_name FROM @extschema@.capacity_stage_def d WHERE d.stage = cur;
    -- promote (a trigger fires) > plan (one is forecast within the
    -- horizon: recommended is the stage to plan for) > review > stay
    recommended_stage := CASE WHEN rec IS NOT NULL AND rec > cur THEN rec
                              WHEN plan_stage IS NOT NULL THEN plan_stage
                              ELSE cur END;
    SELECT d.name, d.runbook INTO recommended_name, runbook
      FROM @extschema@.capacity_stage_def d WHERE d.stage = recommended_stage;
    decision := CASE WHEN rec IS NOT NULL AND rec > cur THEN 'promote'
                     WHEN plan_stage IS NOT NULL THEN 'plan'
                     WHEN cardinality(contradictions) > 0 OR insufficient IS NOT NULL THEN 'review'
                     ELSE 'stay' END;
    firing := CASE WHEN decision = 'plan' THEN planned ELSE coalesce(fired, '{}') END;
    evidence := ev;
    evaluated_at := as_of;
    RETURN NEXT;
END
$$;

CREATE FUNCTION @extschema@.capacity_stage(as_of timestamptz DEFAULT now(),
                                           horizon interval DEFAULT '6 months')
RETURNS TABLE(current_stage integer, current_name text, recommended_stage integer,
              recommended_name text, decision text, firing text[], evidence jsonb,
              runbook text, evaluated_at timestamptz)
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.capacity_stage_eval(as_of, @extschema@.capacity_bindings(), horizon) $$;
COMMENT ON FUNCTION @extschema@.capacity_stage IS
    'Where the database stands on the six-stage ladder, whether a trigger says to move (promote) or will within the horizon (plan), and the evidence.';
-- Stage actions: declare the stage, declared flags, SLO thresholds, table
-- bindings, and the weekly decision.  Each validates first and changes
-- nothing on bad input.

CREATE FUNCTION @extschema@.capacity_set_stage(stage integer, note text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF stage IS NULL OR stage NOT BETWEEN 1 AND 6 THEN
        RAISE EXCEPTION 'matter_capacity: stage % is not on the ladder', coalesce(stage::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Stages are 1 to 6; see SELECT * FROM capacity_stages.';
    END IF;
    INSERT INTO @extschema@.capacity_stage_history (stage, note, set_at, set_by)
    VALUES (stage, note, now(), session_user);
END
$$;

CREATE FUNCTION @extschema@.capacity_declare(flag text, note text, active boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    known text;
BEGIN
    IF flag IS NULL OR NOT EXISTS (SELECT 1 FROM @extschema@.capacity_trigger t WHERE t.declared_flag = flag) THEN
        SELECT string_agg(DISTINCT t.declared_flag, ', ' ORDER BY t.declared_flag) INTO known
          FROM @extschema@.capacity_trigger t WHERE t.declared_flag IS NOT NULL;
        RAISE EXCEPTION 'matter_capacity: flag "%" is not a declared trigger', coalesce(flag, 'NULL')
            USING ERRCODE = '22023', HINT = 'Known flags: ' || known || '.';
    END IF;
    IF active IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: active for flag % must not be NULL', flag
            USING ERRCODE = '22004', HINT = 'true declares it, false withdraws it.';
    END IF;
    INSERT INTO @extschema@.capacity_declaration AS d (flag, active, note, changed_at, changed_by)
    VALUES (flag, active, note, now(), session_user)
    ON CONFLICT ON CONSTRAINT capacity_declaration_pkey DO UPDATE
       SET active = EXCLUDED.active, note = EXCLUDED.note,
           changed_at = EXCLUDED.changed_at, changed_by = EXCLUDED.changed_by;
    INSERT INTO @extschema@.capacity_declaration_history (flag, active, note, changed_at, changed_by)
    VALUES (flag, active, note, now(), session_user);
END
$$;

CREATE FUNCTION @extschema@.capacity_set_threshold(setting text, value double precision)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    known text;
BEGIN
    IF setting IS NULL OR NOT EXISTS (SELECT 1 FROM @extschema@.capacity_setting s WHERE s.name = setting) THEN
        SELECT string_agg(s.name, ', ' ORDER BY s.name) INTO known FROM @extschema@.capacity_setting s;
        RAISE EXCEPTION 'matter_capacity: threshold setting "%" does not exist', coalesce(setting, 'NULL')
            USING ERRCODE = '42704', HINT = 'Settings: ' || known || '.';
    END IF;
    IF value IS NULL OR value = 'NaN'::float8 OR value IN ('Infinity'::float8, '-Infinity'::float8) OR value <= 0 THEN
        RAISE EXCEPTION 'matter_capacity: value % for threshold setting % must be a positive finite number', value, setting
            USING ERRCODE = '22023', HINT = 'Pass the SLO figure in the setting''s unit (see capacity_setting).';
    END IF;
    UPDATE @extschema@.capacity_setting s SET value = capacity_set_threshold.value WHERE s.name = setting;
END
$$;

CREATE FUNCTION @extschema@.capacity_bind_table(logical_name text, tbl regclass)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM @extschema@.capacity_table_binding b WHERE b.logical_name = capacity_bind_table.logical_name) THEN
        RAISE EXCEPTION 'matter_capacity: "%" is not a logical hot table', logical_name
            USING ERRCODE = '42704', HINT = 'The plan knows Event and AuditEntry.';
    END IF;
    UPDATE @extschema@.capacity_table_binding b SET table_name = tbl
     WHERE b.logical_name = capacity_bind_table.logical_name;
END
$$;

-- The weekly review: record the decision with the evidence of this moment.
CREATE FUNCTION @extschema@.capacity_decide_at(decision text, note text, as_of timestamptz, bindings jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    br jsonb;
BEGIN
    IF decision IS NULL OR decision NOT IN ('stay', 'promote', 'rollback') THEN
        RAISE EXCEPTION 'matter_capacity: decision "%" is not one of stay, promote, rollback', coalesce(decision, 'NULL')
            USING ERRCODE = '22023', HINT = 'Record stay, promote or rollback; set the new stage with capacity_set_stage().';
    END IF;
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'matter_capacity: as_of of the decision must be a finite time'
            USING ERRCODE = '22008', HINT = 'Omit it to use now().';
    END IF;
    SELECT * INTO s FROM @extschema@.capacity_stage_eval(as_of, bindings);
    SELECT coalesce(jsonb_agg(jsonb_build_object('trigger', e.trigger_name, 'stage', e.stage,
                        'labels', e.labels, 'value', e.value, 'threshold', e.threshold,
                        'since', e.window_start) ORDER BY e.stage, e.trigger_name), '[]')
      INTO br
      FROM @extschema@.capacity_trigger_eval(as_of, bindings) e WHERE e.status = 'firing';
    INSERT INTO @extschema@.capacity_decision
        (decided_at, decision, note, current_stage, recommended_stage, evaluation, firing, breaches, evidence, decided_by)
    VALUES (as_of, decision, note, s.current_stage, s.recommended_stage, s.decision, s.firing, br, s.evidence, session_user);
END
$$;

CREATE FUNCTION @extschema@.capacity_decide(decision text, note text, as_of timestamptz DEFAULT now())
RETURNS void
LANGUAGE sql
AS $$ SELECT @extschema@.capacity_decide_at(decision, note, as_of, @extschema@.capacity_bindings()) $$;

CREATE VIEW @extschema@.capacity_trigger_status AS
SELECT e.trigger_name, e.stage, e.indicator, e.labels, e.value, e.threshold,
       e.threshold_is_default, e.comparator, e.sustain AS "window", e.samples,
       e.status = 'firing' AS fired, e.status, e.description
  FROM @extschema@.capacity_trigger_eval(now(), @extschema@.capacity_bindings()) e;

CREATE VIEW @extschema@.capacity_stages AS
WITH s AS (SELECT * FROM @extschema@.capacity_stage())
SELECT d.stage, d.name,
       CASE WHEN d.stage = s.current_stage THEN 'current'
            WHEN d.stage < s.current_stage THEN 'passed'
            WHEN d.stage = s.recommended_stage AND s.decision = 'plan' THEN 'plan'
            WHEN d.stage = s.recommended_stage THEN 'recommended'
            ELSE 'ahead' END AS status,
       (SELECT array_agg(t.name ORDER BY t.name) FROM @extschema@.capacity_trigger t WHERE t.stage = d.stage) AS triggers,
       (SELECT array_agg(f ORDER BY f) FROM unnest(s.firing) f
         WHERE s.decision <> 'plan'
           AND f IN (SELECT t.name FROM @extschema@.capacity_trigger t WHERE t.stage = d.stage)) AS firing,
       (SELECT array_agg(f ->> 'trigger' ORDER BY f ->> 'trigger') FROM jsonb_array_elements(s.evidence -> 'forecasts') f
         WHERE (f ->> 'stage')::integer = d.stage) AS forecast,
       d.summary, d.ceiling, d.runbook, d.slo_impact
  FROM @extschema@.capacity_stage_def d CROSS JOIN s
 ORDER BY d.stage;

CREATE VIEW @extschema@.capacity_decisions AS
SELECT id, decided_at, decision, note, current_stage, recommended_stage, evaluation,
       firing, breaches, evidence, decided_by
  FROM @extschema@.capacity_decision;
-- capacity_report(): the weekly capacity review as text, one line per row.

-- Eight-level sparkline of values scaled from 0 to hi.
CREATE FUNCTION @extschema@.capacity_sparkline(vals double precision[], hi double precision)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(string_agg(CASE WHEN v IS NULL THEN ' '
                                    ELSE substr('▁▂▃▄▅▆▇█', 1 + least(7, greatest(0,
                                           floor(v / nullif(hi, 0) * 8)::int)), 1) END,
                               '' ORDER BY i), '')
      FROM unnest(vals) WITH ORDINALITY AS u(v, i)
$$;

-- A number as a person reads it: whole above 100, else up to 6 decimals.
CREATE FUNCTION @extschema@.capacity_fmt(v double precision)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN v IS NULL THEN ''
                WHEN abs(v) >= 100 THEN round(v::numeric)::text
                ELSE rtrim(rtrim(round(v::numeric, CASE WHEN abs(v) >= 1 THEN 2 ELSE 6 END)::text, '0'), '.') END
$$;

CREATE FUNCTION @extschema@.capacity_report_at(as_of timestamptz, bindings jsonb,
                                               horizon interval DEFAULT '6 months')
RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    r record;
    days double precision[];
    hi double precision;
    lbl text;
    evals @extschema@.capacity_trigger_row[];
BEGIN
    SELECT * INTO s FROM @extschema@.capacity_stage_eval(as_of, bindings, horizon);
    RETURN NEXT format('Capacity review at %s UTC', to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'));
    RETURN NEXT format('Stage %s (%s); recommended %s (%s): %s',
                       s.current_stage, s.current_name, s.recommended_stage, s.recommended_name,
                       upper(s.decision));
    IF cardinality(s.firing) > 0 THEN
        RETURN NEXT CASE WHEN s.decision = 'plan'
                         THEN 'Forecast to fire by ' || to_char((as_of + horizon) AT TIME ZONE 'UTC', 'YYYY-MM-DD') || ': '
                         ELSE 'Firing: ' END || array_to_string(s.firing, ', ');
    END IF;
    FOR r IN SELECT jsonb_array_elements_text(s.evidence->'contradictions') AS c LOOP
        RETURN NEXT 'Contradiction: ' || r.c;
    END LOOP;
    IF jsonb_array_length(s.evidence->'insufficient_data') > 0 THEN
        RETURN NEXT 'Insufficient data for the next stage: '
                    || (SELECT string_agg(x, ', ') FROM jsonb_array_elements_text(s.evidence->'insufficient_data') x);
    END IF;
    IF s.runbook IS NOT NULL THEN
        RETURN NEXT 'Runbook: ' || s.runbook;
    END IF;

    RETURN NEXT '';
    RETURN NEXT format('%-4s %-40s %-18s %14s %16s  %s', 'stg', 'trigger', 'status', 'value', 'threshold', 'last 30 days (daily avg; | marks the threshold)');
    -- evaluated once: the trigger table and the forecasts both read it
    evals := ARRAY(SELECT e FROM @extschema@.capacity_trigger_eval(as_of, bindings) e);
    FOR r IN SELECT e.* FROM unnest(evals) e
              ORDER BY e.stage NULLS LAST, e.trigger_name, e.labels::text
    LOOP
        days := NULL;
        hi := NULL;
        IF r.indicator IS NOT NULL AND r.labels IS NOT NULL THEN
            SELECT array_agg(d.v ORDER BY d.day) INTO days
              FROM (SELECT g.day, (SELECT avg(h.avg) FROM @extschema@.capacity_sample_hourly h
                                    WHERE h.indicator = r.indicator AND h.labels @> r.labels
                                      AND h.hour >= g.day AND h.hour < g.day + interval '1 day') AS v
                      FROM generate_series(date_trunc('day', as_of AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '29 days',
                                           date_trunc('day', as_of AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                                           interval '1 day') AS g(day)) d;
            SELECT greatest(max(v), r.threshold) * 1.0001 INTO hi FROM unnest(days) v
             HAVING count(v) > 0;
        END IF;
        SELECT string_agg(j.value, ',' ORDER BY j.key) INTO lbl FROM jsonb_each_text(r.labels) j;
        RETURN NEXT format('%-4s %-40s %-18s %14s %16s  %s',
                           coalesce(r.stage::text, '-'),
                           r.trigger_name || coalesce(' (' || lbl || ')', ''),
                           r.status,
                           @extschema@.capacity_fmt(r.value),
                           CASE WHEN r.threshold IS NULL THEN ''
                                ELSE r.comparator || ' ' || @extschema@.capacity_fmt(r.threshold)
                                     || CASE WHEN r.threshold_is_default THEN '*' ELSE '' END END,
                           CASE WHEN days IS NULL OR hi IS NULL THEN ''
                                ELSE @extschema@.capacity_sparkline(days, hi) || ' |'
                                     || @extschema@.capacity_sparkline(ARRAY[r.threshold], hi) END);
    END LOOP;
    RETURN NEXT '  * threshold still at its default SLO setting (capacity_set_threshold)';

    RETURN NEXT '';
    RETURN NEXT format('Forecasts to %s (the horizon), trends over the last %s days',
                       to_char((as_of + horizon) AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                       coalesce(nullif(current_setting('matter_capacity.forecast_lookback_days', true), ''), '30'));
    RETURN NEXT format('%-4s %-40s %-16s %-11s %-24s %-15s %s', 'stg', 'trigger', 'status', 'eta',
                       'band (earliest..latest)', 'method', 'trend/day');
    FOR r IN SELECT f.* FROM @extschema@.capacity_forecast_eval(as_of, horizon, bindings,
                  evals) f
              WHERE f.status <> 'insufficient data' AND f.trigger_name <> 'partition_runway'
    LOOP
        SELECT string_agg(j.value, ',' ORDER BY j.key) INTO lbl FROM jsonb_each_text(r.labels) j;
        RETURN NEXT rtrim(format('%-4s %-40s %-16s %-11s %-24s %-15s %s',
                           coalesce(r.stage::text, '-'),
                           r.trigger_name || coalesce(' (' || lbl || ')', ''),
                           r.status,
                           CASE WHEN r.status = 'firing' THEN 'now'
                                ELSE coalesce(to_char(r.eta AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '') END,
                           CASE WHEN r.status = 'firing' OR r.eta IS NULL THEN ''
                                ELSE to_char(r.eta_earliest AT TIME ZONE 'UTC', 'YYYY-MM-DD') || '..'
                                     || coalesce(to_char(r.eta_latest AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'never') END,
                           coalesce(r.method, ''),
                           @extschema@.capacity_fmt(r.trend_per_day)
                             || CASE WHEN r.daily_growth_pct IS NULL THEN ''
                                     ELSE ' (' || @extschema@.capacity_fmt(r.daily_growth_pct) || ' %)' END));
    END LOOP;
    RETURN NEXT '  (triggers with too little data for a trend are left out; SELECT * FROM capacity_forecast())';

    RETURN NEXT '';
    RETURN NEXT 'Partition runway and default partitions';
    FOR r IN SELECT p.table_name::text AS t,
                    (SELECT round((extract(epoch FROM h.range_to - as_of) / 86400)::numeric, 1)
                       FROM @extschema@.capacity_partition_horizon() h WHERE h.table_name = p.table_name) AS runway,
                    (SELECT l.value FROM @extschema@.capacity_latest_sample l
                      WHERE l.indicator = 'default_partition_rows'
                        AND l.labels = jsonb_build_object('table', p.table_name::text)) AS deflt
               FROM @extschema@.capacity_policy p ORDER BY 1
    LOOP
        RETURN NEXT format('  %-40s runway %8s days   default-partition rows %s',
                           r.t, coalesce(r.runway::text, '?'), coalesce(r.deflt::text, 'not sampled'));
    END LOOP;

    RETURN NEXT '';
    RETURN NEXT 'EXPLAIN-stability checks failing at their last run';
    FOR r IN SELECT DISTINCT ON (x.name) x.name, x.partitions_scanned, x.max_partitions, x.passed, x.error
               FROM @extschema@.capacity_explain_result x
               JOIN @extschema@.capacity_explain_check c ON c.name = x.name
              WHERE x.as_of <= capacity_report_at.as_of
              ORDER BY x.name, x.id DESC
    LOOP
        CONTINUE WHEN r.passed;
        RETURN NEXT format('  %-50s scans %s (max %s)%s', r.name, coalesce(r.partitions_scanned::text, '?'),
                           r.max_partitions, coalesce(': ' || r.error, ''));
    END LOOP;

    RETURN NEXT '';
    RETURN NEXT 'Last decisions';
    FOR r IN SELECT d.* FROM @extschema@.capacity_decision d ORDER BY d.decided_at DESC, d.id DESC LIMIT 5 LOOP
        RETURN NEXT format('  %s  %-8s stage %s, evaluation %s: %s',
                           to_char(r.decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), r.decision,
                           r.current_stage, r.evaluation, coalesce(r.note, ''));
    END LOOP;
    RETURN;
END
$$;

CREATE FUNCTION @extschema@.capacity_report(as_of timestamptz DEFAULT now(),
                                            horizon interval DEFAULT '6 months')
RETURNS SETOF text
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.capacity_report_at(as_of, @extschema@.capacity_bindings(), horizon) $$;
COMMENT ON FUNCTION @extschema@.capacity_report IS
    'The weekly capacity review as text: verdict, triggers with 30-day sparklines, runway, decisions.';
-- Forecasting: when would each metric trigger start to hold, and when
-- would each managed table run out of partitions?
--
-- The fit itself (Theil-Sen, linear or multiplicative, with a 95% band) is
-- C: capacity_fit_trend in src/forecast.c.  Which points it is given is
-- decided here, from the daily rollups (capacity_sample_daily, made from
-- the hourly ones) of the last matter_capacity.forecast_lookback_days
-- complete UTC days.  See
-- docs/forecasting.md for what each kind of trigger is fitted on.

CREATE TYPE @extschema@.capacity_trend AS (
    points        integer,
    method        text,              -- linear | multiplicative
    level         double precision,  -- fitted value at t = 0
    slope         double precision,  -- per day; per day of ln(value) if multiplicative
    slope_low     double precision,  -- 95% band of the slope
    slope_high    double precision,
    fit_error     double precision,  -- mean absolute residual, largest tenth left out
    days          double precision,  -- until the threshold is crossed
    days_earliest double precision,
    days_latest   double precision,
    other_days    double precision,  -- crossing by the other model when it fits nearly as well
    verdict       text);             -- insufficient data | trend | reached | moving away | flat or too noisy

CREATE FUNCTION @extschema@.capacity_fit_trend(t double precision[], y double precision[],
                                               threshold double precision DEFAULT NULL,
                                               comparator text DEFAULT '>',
                                               anchor double precision DEFAULT NULL,
                                               min_points integer DEFAULT 7)
RETURNS @extschema@.capacity_trend
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_fit_trend';
COMMENT ON FUNCTION @extschema@.capacity_fit_trend IS
    'Robust trend (Theil-Sen, linear or multiplicative by fit) of y over t in days, and the days until it crosses threshold.';

CREATE TYPE @extschema@.capacity_forecast_row AS (
    stage            integer,
    trigger_name     text,
    indicator        text,
    labels           jsonb,
    current_value    double precision,
    threshold        double precision,
    comparator       text,
    trend_per_day    double precision,
    daily_growth_pct double precision,
    method           text,
    eta              timestamptz,
    days_left        numeric,
    eta_earliest     timestamptz,
    eta_latest       timestamptz,
    status           text,
    days_of_data     integer,
    note             text);

-- The forecast behind capacity_forecast() and the plan decision of
-- capacity_stage().  evals: capacity_trigger_eval at as_of (its firing
-- rows make a forecast "firing"); min_stage: only triggers of that stage
-- and above, no leading indicators and no runway (what the stage
-- evaluation needs).
CREATE FUNCTION @extschema@.capacity_forecast_eval(as_of timestamptz, horizon interval, bindings jsonb,
                                                   evals @extschema@.capacity_trigger_row[],
                                                   min_stage integer DEFAULT NULL)
RETURNS SETOF @extschema@.capacity_forecast_row
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    lookback integer := coalesce(nullif(current_setting('matter_capacity.forecast_lookback_days', true), '')::integer, 30);
    origin constant timestamptz := '2000-01-01 00:00+00';
    today timestamptz;
    first_day timestamptz;
    inds text[];
    counters text[];
    recent @extschema@.capacity_sample[];
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'matter_capacity: as_of of the forecast must be a finite time'
            USING ERRCODE = '22008', HINT = 'Omit it to use now().';
    END IF;
    IF horizon IS NULL OR horizon <= interval '0' OR NOT isfinite(as_of + horizon) THEN
        RAISE EXCEPTION 'matter_capacity: forecast horizon % must be a positive interval', coalesce(horizon::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'The capacity plan looks ahead 6 months: pass interval ''6 months''.';
    END IF;
    today := date_bin('1 day', as_of, origin);
    first_day := today - make_interval(days => lookback);

    SELECT array_agg(DISTINCT t.indicator),
           array_agg(DISTINCT t.indicator) FILTER (WHERE t.aggregate = 'growth')
      INTO inds, counters
      FROM @extschema@.capacity_trigger t
     WHERE t.indicator IS NOT NULL AND (min_stage IS NULL OR t.stage >= min_stage);
    inds := inds || '{table_rows_inserted}';
    counters := coalesce(counters, '{}') || '{table_rows, table_rows_inserted}';
    -- the newest sample of each row count and counter in the last day: kept
    -- in capacity_latest_sample, unless as_of is in the past of it; then
    -- from the raw samples, planned with the bounds to read one or two days
    recent := ARRAY(SELECT ROW(l.indicator, l.labels, l.sampled_at, l.value)::@extschema@.capacity_sample
                      FROM @extschema@.capacity_latest_sample l
                     WHERE l.indicator = ANY (counters) AND l.value IS NOT NULL
                       AND l.sampled_at > as_of - interval '1 day' AND l.sampled_at <= as_of);
    IF EXISTS (SELECT 1 FROM @extschema@.capacity_latest_sample l
                WHERE l.indicator = ANY (counters) AND l.sampled_at > as_of) THEN
        EXECUTE 'SELECT array_agg(s) FROM (
                     SELECT DISTINCT ON (s.indicator, s.labels) s.*
                       FROM @extschema@.capacity_sample s
                      WHERE s.indicator = ANY ($1) AND s.sampled_at > $2 AND s.sampled_at <= $3
                        AND s.value IS NOT NULL
                      ORDER BY s.indicator, s.labels, s.sampled_at DESC) s'
           INTO recent USING counters, as_of - interval '1 day', as_of;
    END IF;

    RETURN QUERY
WITH days AS MATERIALIZED (   -- each series on each complete day of the lookback
    SELECT d.* FROM @extschema@.capacity_sample_daily d
     WHERE d.indicator = ANY (inds) AND d.day >= first_day AND d.day < today
),
now_s AS MATERIALIZED (SELECT * FROM unnest(coalesce(recent, '{}'))),
trig AS (
    SELECT t.*, CASE WHEN t.comparator IN ('>', '>=') THEN 1 ELSE -1 END AS dir,
           (t.indicator = 'table_rows' AND t.aggregate = 'latest') AS rowcount
      FROM @extschema@.capacity_trigger_resolved(bindings) t
     WHERE t.indicator IS NOT NULL AND (min_stage IS NULL OR t.stage >= min_stage)
),
series AS (   -- every series a trigger looks at; a ratio trigger is one series
    SELECT t.name, x.labels
      FROM trig t
      JOIN (SELECT DISTINCT d.indicator, d.labels FROM days d
            UNION SELECT n.indicator, n.labels FROM now_s n
            UNION SELECT l.indicator, l.labels FROM @extschema@.capacity_latest_sample l) x
        ON x.indicator = t.indicator AND x.labels @> t.filter
     WHERE t.aggregate <> 'ratio' AND NOT t.unbound
    UNION ALL
    SELECT t.name, t.label_filter FROM trig t WHERE t.aggregate = 'ratio'
),
day_stats AS (   -- the days of every series a level trigger looks at
    SELECT x.name, x.labels, d.day, d.peak_hour_min, d.trough_hour_max, d.peak_hour_avg, d.trough_hour_avg,
           d.max, d.min, d.last
      FROM series x JOIN trig t ON t.name = x.name
      JOIN days d ON d.indicator = t.indicator AND d.labels = x.labels
     WHERE t.aggregate IN ('all', 'latest')
),
level_points AS (
    -- all: the best hour of the day (the hourly minimum when the window is
    -- an hour or more, else the hourly average); latest: the day's extreme
    SELECT d.name, d.labels, 'level'::text AS basis,
           extract(epoch FROM d.day + interval '12 hours' - as_of)::float8 / 86400 AS t,
           CASE WHEN t.aggregate = 'all' AND t.sustain >= interval '1 hour' THEN
                     CASE WHEN t.dir > 0 THEN d.peak_hour_min ELSE d.trough_hour_max END
                WHEN t.aggregate = 'all' THEN
                     CASE WHEN t.dir > 0 THEN d.peak_hour_avg ELSE d.trough_hour_avg END
                ELSE CASE WHEN t.dir > 0 THEN d.max ELSE d.min END END AS y
      FROM day_stats d JOIN trig t ON t.name = d.name
     WHERE NOT t.rowcount
    UNION ALL
    -- ratio: the day's average of the series over that of the reference
    SELECT t.name, t.label_filter, 'level',
           extract(epoch FROM d.day + interval '12 hours' - as_of)::float8 / 86400,
           avg(d.avg) FILTER (WHERE d.labels @> t.label_filter)
             / nullif(avg(d.avg) FILTER (WHERE d.labels @> t.ratio_filter), 0)
      FROM trig t JOIN days d ON d.indicator = t.indicator
     WHERE t.aggregate = 'ratio'
     GROUP BY t.name, t.label_filter, d.day
),
rows_now AS (   -- the row count a table_rows trigger starts from
    SELECT x.name, x.labels, n.value
      FROM series x JOIN trig t ON t.name = x.name AND t.rowcount
      JOIN now_s n ON n.indicator = 'table_rows' AND n.labels = x.labels
),
counter_series AS (   -- cumulative series: growth triggers, and inserts behind row counts
    SELECT x.name, x.labels, CASE WHEN t.rowcount THEN 'table_rows_inserted' ELSE t.indicator END AS counter
      FROM series x JOIN trig t ON t.name = x.name
     WHERE t.aggregate = 'growth' OR t.rowcount
),
counter_values AS (   -- end of each day, and the newest raw value of today
    SELECT c.name, c.labels, d.day + interval '1 day' AS at, d.last AS v
      FROM counter_series c JOIN days d ON d.indicator = c.counter AND d.labels = c.labels
    UNION ALL
    SELECT c.name, c.labels, n.sampled_at, n.value
      FROM counter_series c JOIN now_s n ON n.indicator = c.counter AND n.labels = c.labels
     WHERE n.sampled_at > today
),
counter_steps AS (   -- increments; after a reset the counter restarted from zero
    SELECT v.*, v.v - lag(v.v) OVER w AS dv,
           extract(epoch FROM v.at - lag(v.at) OVER w)::float8 / 86400 AS dt
      FROM counter_values v
    WINDOW w AS (PARTITION BY v.name, v.labels ORDER BY v.at)
),
counter_sums AS (
    SELECT s.*, sum(CASE WHEN s.dv IS NULL THEN 0 WHEN s.dv >= 0 THEN s.dv ELSE s.v END)
                    OVER (PARTITION BY s.name, s.labels ORDER BY s.at) AS cum
      FROM counter_steps s
),
counter_points AS (
    -- growth: the rate between two consecutive values, in the trigger's
    -- per_period units, placed in the middle of its interval
    SELECT c.name, c.labels, 'rate'::text AS basis,
           extract(epoch FROM c.at - as_of)::float8 / 86400 - c.dt / 2 AS t,
           c.dv / c.dt * extract(epoch FROM t.per_period)::float8 / 86400 AS y
      FROM counter_sums c JOIN trig t ON t.name = c.name
     WHERE t.aggregate = 'growth' AND c.dv >= 0 AND c.dt > 0
    UNION ALL
    -- row counts: the current count less the rows inserted since each day
    SELECT c.name, c.labels, 'inserts',
           extract(epoch FROM c.at - as_of)::float8 / 86400,
           r.value - (max(c.cum) OVER (PARTITION BY c.name, c.labels) - c.cum)
      FROM counter_sums c JOIN rows_now r ON r.name = c.name AND r.labels = c.labels
    UNION ALL
    -- row counts without an insert counter: the counts themselves
    SELECT d.name, d.labels, 'rows',
           extract(epoch FROM d.day + interval '1 day' - as_of)::float8 / 86400, d.last
      FROM day_stats d JOIN trig t ON t.name = d.name AND t.rowcount
    UNION ALL
    SELECT r.name, r.labels, 'rows', 0::float8, r.value FROM rows_now r
),
points AS (
    SELECT * FROM level_points WHERE y IS NOT NULL
    UNION ALL
    SELECT * FROM counter_points WHERE y IS NOT NULL
),
basis AS (   -- row counts: inserts when there are enough of them, else rows
    SELECT DISTINCT ON (p.name, p.labels) p.name, p.labels, p.basis
      FROM points p
     GROUP BY p.name, p.labels, p.basis
     ORDER BY p.name, p.labels, count(*) >= 7 DESC, p.basis = 'inserts' DESC
),
fits AS (
    SELECT b.name, b.labels, b.basis,
           @extschema@.capacity_fit_trend(array_agg(p.t ORDER BY p.t), array_agg(p.y ORDER BY p.t),
                                          t.eff_threshold, t.comparator,
                                          CASE WHEN t.rowcount THEN min(r.value) END, 7) AS f
      FROM basis b
      JOIN points p ON p.name = b.name AND p.labels = b.labels AND p.basis = b.basis
      JOIN trig t ON t.name = b.name
      LEFT JOIN rows_now r ON r.name = b.name AND r.labels = b.labels
     GROUP BY b.name, b.labels, b.basis, t.eff_threshold, t.comparator, t.rowcount
),
every AS (   -- every series, and a row for triggers that have none
    SELECT x.name, x.labels FROM series x
    UNION ALL
    SELECT t.name, t.filter FROM trig t
     WHERE NOT EXISTS (SELECT 1 FROM series x WHERE x.name = t.name)
),
judged AS (
    SELECT t.stage, t.name, t.indicator, e.labels, t.eff_threshold, t.comparator, t.aggregate,
           t.rowcount, t.unbound, t.sustain, f.basis, (f.f).*,
           CASE WHEN t.rowcount THEN r.value ELSE (f.f).level END AS cur,
           -- a growth trigger averages its window: it follows the daily rate by half of it
           CASE WHEN t.aggregate = 'growth' THEN t.sustain / 2 ELSE interval '0' END AS lag_by,
           EXISTS (SELECT 1 FROM unnest(evals) v
                    WHERE v.trigger_name = t.name AND v.labels = e.labels AND v.status = 'firing') AS firing
      FROM every e JOIN trig t ON t.name = e.name
      LEFT JOIN fits f ON f.name = e.name AND f.labels = e.labels
      LEFT JOIN rows_now r ON r.name = e.name AND r.labels = e.labels
),
dated AS (
    SELECT j.*,
           as_of + j.days * interval '1 day' + j.lag_by AS eta_at,
           as_of + j.days_earliest * interval '1 day' + j.lag_by AS early_at,
           as_of + j.days_latest * interval '1 day' + j.lag_by AS late_at
      FROM judged j
)
SELECT d.stage, d.name, d.indicator, d.labels, d.cur, d.eff_threshold, d.comparator,
       CASE WHEN d.method = 'multiplicative' THEN d.cur * (exp(d.slope) - 1) ELSE d.slope END,
       CASE WHEN d.method = 'multiplicative' THEN 100 * (exp(d.slope) - 1) END,
       d.method,
       CASE WHEN d.firing THEN as_of ELSE d.eta_at END,
       CASE WHEN d.firing THEN 0 ELSE round((extract(epoch FROM d.eta_at - as_of) / 86400)::numeric, 1) END,
       CASE WHEN d.firing THEN as_of ELSE d.early_at END,
       CASE WHEN d.firing THEN as_of ELSE d.late_at END,
       CASE WHEN d.firing THEN 'firing'
            WHEN d.verdict IS NULL OR d.verdict = 'insufficient data' OR (d.rowcount AND d.cur IS NULL)
                 THEN 'insufficient data'
            WHEN d.verdict IN ('trend', 'reached') AND d.eta_at IS NOT NULL THEN
                 CASE WHEN d.eta_at <= as_of + horizon THEN 'forecast' ELSE 'beyond horizon' END
            ELSE 'no trend' END,
       coalesce(d.points, 0),
       concat_ws('; ',
           CASE WHEN d.unbound THEN 'table not bound (capacity_bind_table)' END,
           CASE WHEN d.rowcount AND d.cur IS NULL AND d.verdict IS NOT NULL THEN 'no row count in the last day' END,
           CASE WHEN d.verdict IN ('moving away', 'flat or too noisy') THEN d.verdict END,
           CASE WHEN d.verdict = 'reached' THEN 'the fitted level is already past the threshold' END,
           CASE WHEN d.other_days IS NOT NULL THEN
                'the ' || CASE WHEN d.method = 'linear' THEN 'multiplicative' ELSE 'linear' END
                || ' fit is nearly as good (' || round(d.other_days::numeric) || ' days): the band includes it' END,
           CASE WHEN d.verdict <> 'insufficient data' THEN
                CASE d.basis WHEN 'inserts' THEN 'current rows + insert trend'
                             WHEN 'rows' THEN 'row counts (no insert counter)'
                             WHEN 'rate' THEN 'daily rate; the trigger''s window average follows'
                             ELSE NULL END END)
  FROM dated d
UNION ALL
-- partition runway: if rollover stopped now, rows for times after the
-- newest partition's upper bound would land in the default partition
SELECT NULL::integer, 'partition_runway'::text, 'partition_runway_days'::text,
       jsonb_build_object('table', p.table_name::text),
       extract(epoch FROM coalesce(h.range_to, as_of) - as_of)::float8 / 86400, 0::float8, '<='::text,
       -1::float8, NULL::float8, 'partition bounds'::text,
       coalesce(h.range_to, as_of),
       round((extract(epoch FROM coalesce(h.range_to, as_of) - as_of) / 86400)::numeric, 1),
       coalesce(h.range_to, as_of), coalesce(h.range_to, as_of),
       CASE WHEN coalesce(h.range_to, as_of) <= as_of THEN 'firing'
            WHEN h.range_to <= as_of + horizon THEN 'forecast'
            ELSE 'beyond horizon' END,
       NULL::integer,
       CASE WHEN p.default_partition THEN 'if rollover stopped, later rows would go to the default partition'
            ELSE 'if rollover stopped, later rows would fail: no default partition' END
  FROM @extschema@.capacity_policy p
  LEFT JOIN @extschema@.capacity_partition_horizon() h ON h.table_name = p.table_name
 WHERE min_stage IS NULL
 ORDER BY 1 NULLS LAST, 2, 4;
END
$fn$;

CREATE FUNCTION @extschema@.capacity_forecast(as_of timestamptz DEFAULT now(),
                                              horizon interval DEFAULT '6 months')
RETURNS SETOF @extschema@.capacity_forecast_row
LANGUAGE sql STABLE
AS $$
    SELECT * FROM @extschema@.capacity_forecast_eval(as_of, horizon, @extschema@.capacity_bindings(),
        ARRAY(SELECT e FROM @extschema@.capacity_trigger_eval(as_of, @extschema@.capacity_bindings()) e))
$$;
COMMENT ON FUNCTION @extschema@.capacity_forecast IS
    'When each metric trigger and leading indicator is projected to fire (trend, eta, band, status), and the partition runway.';
-- EXPLAIN-stability: how many partitions a query would scan.

CREATE FUNCTION @extschema@.capacity_explain_partitions(query text, params text[] DEFAULT NULL)
RETURNS integer
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_explain_partitions';
COMMENT ON FUNCTION @extschema@.capacity_explain_partitions IS
    'Leaf partitions a single SELECT would scan after plan-time and start-up pruning (the worse of custom and generic plan when params are given); never executes it.';

CREATE FUNCTION @extschema@.capacity_explain_detail(query text, params text[] DEFAULT NULL)
RETURNS TABLE(partitions integer, custom_partitions integer, generic_partitions integer, signature text)
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_explain_detail';

CREATE FUNCTION @extschema@.capacity_explain_as(owner oid, search_path text, query text, params text[])
RETURNS TABLE(partitions integer, custom_partitions integer, generic_partitions integer, signature text)
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_explain_as';

CREATE TABLE @extschema@.capacity_explain_check (
    name            text PRIMARY KEY CHECK (name <> ''),
    query           text NOT NULL,
    max_partitions  integer NOT NULL CHECK (max_partitions >= 0),
    params          text[],
    owner           regrole NOT NULL,
    search_path     text,
    table_name      regclass,          -- set for the default checks of a managed table
    registered_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.capacity_explain_check IS
    'Registered EXPLAIN-stability checks.  In params, @period_start@, @period_end@, @mid_period@ and '
    '@mid_next_period@ are replaced at each run by the table''s period boundaries around as_of.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_explain_check', '');

CREATE TABLE @extschema@.capacity_explain_result (
    id                 bigserial PRIMARY KEY,
    name               text NOT NULL,
    run_at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    as_of              timestamptz NOT NULL,
    partitions_scanned integer,
    custom_partitions  integer,
    generic_partitions integer,
    max_partitions     integer NOT NULL,
    passed             boolean NOT NULL,
    signature          text,
    plan_changed       boolean NOT NULL,
    error              text
);
CREATE INDEX ON @extschema@.capacity_explain_result (name, id);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_explain_result', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_explain_result_id_seq', '');

INSERT INTO @extschema@.capacity_indicator (name, unit, source, description) VALUES
 ('explain_failures', 'count', 'builtin', 'EXPLAIN-stability checks that failed in the last capacity_explain_run()');
-- and a leading-indicator alert on it, shown by capacity_trigger_status and the report
INSERT INTO @extschema@.capacity_trigger (name, stage, indicator, aggregate, comparator, threshold, sustain, description)
VALUES ('explain_checks', NULL, 'explain_failures', 'latest', '>', 0, '0',
        'EXPLAIN-stability checks failing (partition pruning regressed)');

-- Register (or replace) a check owned by the calling role; it is tried
-- once now, as that role.
CREATE FUNCTION @extschema@.capacity_explain_register(name text, query text, max_partitions integer,
                                                      params text[] DEFAULT NULL)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_explain_register';
COMMENT ON FUNCTION @extschema@.capacity_explain_register IS
    'Register a query the application runs and the most leaf partitions it may scan; checked by capacity_explain_run() as the registering role.';

-- @period_start@ ... in params, from the managed table's granularity, in UTC.
CREATE FUNCTION @extschema@.capacity_explain_expand(params text[], tbl regclass, as_of timestamptz)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH g AS (
        SELECT CASE p.granularity WHEN 'day' THEN interval '1 day' WHEN 'week' THEN interval '7 days'
                                  ELSE interval '1 month' END AS len,
               date_trunc(p.granularity, as_of AT TIME ZONE 'UTC') AS start_utc
          FROM @extschema@.capacity_policy p WHERE p.table_name = tbl
    )
    SELECT CASE WHEN params IS NULL THEN NULL ELSE ARRAY(
        SELECT CASE v
                 WHEN '@period_start@' THEN ((SELECT start_utc FROM g) AT TIME ZONE 'UTC')::text
                 WHEN '@period_end@' THEN (((SELECT start_utc + len FROM g)) AT TIME ZONE 'UTC')::text
                 WHEN '@mid_period@' THEN (((SELECT start_utc + len / 2 FROM g)) AT TIME ZONE 'UTC')::text
                 WHEN '@mid_next_period@' THEN (((SELECT start_utc + len + len / 2 FROM g)) AT TIME ZONE 'UTC')::text
                 ELSE v END
          FROM unnest(params) WITH ORDINALITY AS u(v, i) ORDER BY i) END
$$;

-- The default checks of a managed table (called by capacity_manage).
CREATE FUNCTION @extschema@.capacity_explain_register_defaults(tbl regclass, owner regrole)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p @extschema@.capacity_policy;
    t text := tbl::text;
    tenant text;
    leaves integer;
BEGIN
    SELECT * INTO p FROM @extschema@.capacity_policy c WHERE c.table_name = tbl;
    leaves := coalesce(p.hash_partitions, 1);
    DELETE FROM @extschema@.capacity_explain_check c WHERE c.table_name = tbl;
    INSERT INTO @extschema@.capacity_explain_check (name, query, max_partitions, params, owner, search_path, table_name)
    VALUES (t || ': one ' || p.granularity,
            format('SELECT * FROM %s WHERE %I >= $1 AND %I < $2', t, p.time_column, p.time_column),
            leaves, ARRAY['@period_start@', '@period_end@'], owner, NULL, tbl);
    IF p.hash_column IS NOT NULL THEN
        SELECT CASE WHEN typ.typcategory = 'N' THEN '1'
                    WHEN typ.oid = 'uuid'::regtype THEN '00000000-0000-0000-0000-000000000000'
                    ELSE 'tenant' END
          INTO tenant
          FROM pg_attribute a JOIN pg_type typ ON typ.oid = a.atttypid
         WHERE a.attrelid = tbl AND a.attname = p.hash_column;
        INSERT INTO @extschema@.capacity_explain_check (name, query, max_partitions, params, owner, search_path, table_name)
        VALUES (t || ': tenant + one ' || p.granularity,
                format('SELECT * FROM %s WHERE %I = $1 AND %I >= $2 AND %I < $3', t, p.hash_column, p.time_column, p.time_column),
                1, ARRAY[tenant, '@period_start@', '@period_end@'], owner, NULL, tbl),
               (t || ': tenant + one ' || p.granularity || ' across a boundary',
                format('SELECT * FROM %s WHERE %I = $1 AND %I >= $2 AND %I < $3', t, p.hash_column, p.time_column, p.time_column),
                2, ARRAY[tenant, '@mid_period@', '@mid_next_period@'], owner, NULL, tbl);
    END IF;
END
$$;

-- Run every check at as_of: count, compare with the bound and with the
-- previous signature, keep the result, record explain_failures.
CREATE FUNCTION @extschema@.capacity_explain_run(as_of timestamptz DEFAULT now())
RETURNS TABLE(name text, partitions_scanned integer, max_partitions integer,
              passed boolean, signature text, plan_changed boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    n_parts integer;
    n_custom integer;
    n_generic integer;
    sig text;
    prev text;
    err text;
    failures integer := 0;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'matter_capacity: as_of must be a finite time'
            USING ERRCODE = '22008', HINT = 'Omit it to use now().';
    END IF;
    FOR c IN SELECT * FROM @extschema@.capacity_explain_check k
              WHERE k.table_name IS NULL OR pg_catalog.to_regclass(k.table_name::text) IS NOT NULL
              ORDER BY k.name LOOP
        n_parts := NULL; n_custom := NULL; n_generic := NULL; sig := NULL;
        err := NULL;
        BEGIN
            SELECT e.partitions, e.custom_partitions, e.generic_partitions, e.signature
              INTO n_parts, n_custom, n_generic, sig
              FROM @extschema@.capacity_explain_as(c.owner, c.search_path, c.query,
                       @extschema@.capacity_explain_expand(c.params, c.table_name, as_of)) e;
        EXCEPTION WHEN OTHERS THEN
            err := SQLERRM;
        END;
        SELECT x.signature INTO prev FROM @extschema@.capacity_explain_result x
         WHERE x.name = c.name AND x.signature IS NOT NULL ORDER BY x.id DESC LIMIT 1;
        name := c.name;
        partitions_scanned := n_parts;
        max_partitions := c.max_partitions;
        passed := err IS NULL AND n_parts <= c.max_partitions;
        signature := sig;
        plan_changed := prev IS NOT NULL AND sig IS NOT NULL AND sig IS DISTINCT FROM prev;
        IF NOT passed THEN
            failures := failures + 1;
        END IF;
        INSERT INTO @extschema@.capacity_explain_result
            (name, as_of, partitions_scanned, custom_partitions, generic_partitions, max_partitions,
             passed, signature, plan_changed, error)
        VALUES (c.name, as_of, n_parts, n_custom, n_generic, c.max_partitions,
                passed, sig, plan_changed, err);
        RETURN NEXT;
    END LOOP;
    IF NOT pg_is_in_recovery() THEN
        INSERT INTO @extschema@.capacity_sample (indicator, labels, sampled_at, value)
        VALUES ('explain_failures', '{}', as_of, failures);
        INSERT INTO @extschema@.capacity_latest_sample AS l (indicator, labels, sampled_at, value)
        VALUES ('explain_failures', '{}', as_of, failures)
        ON CONFLICT ON CONSTRAINT capacity_latest_sample_pkey DO UPDATE
           SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value
         WHERE l.sampled_at <= EXCLUDED.sampled_at;
    END IF;
END
$$;
-- Online conversion of an ordinary table into a managed partitioned table
-- (the stage 3 migration).  docs/runbooks/stage-3-migration.md walks
-- through it.
--
-- capacity_convert: the old table gets a CHECK (time < bound) added NOT
-- VALID and validated online (no DML is blocked); a new partitioned table
-- of the same shape is prepared under another name; then, in one short
-- transaction under matter_capacity.lock_timeout (retried), the names are
-- swapped and the old table is attached as the historical partition
-- [MINVALUE, bound): the validated constraint proves its bounds, so nothing
-- is scanned under the lock.  bound is the start of the next period, so
-- from then on rows go to period partitions.
--
-- capacity_convert_backfill: copies the historical partition, a batch of
-- pages per transaction, into period tables gathered under a private
-- staging table, while a trigger on the historical partition replays every
-- write into the copy; queries keep reading the historical partition.  At
-- the end one short transaction (lock timeout, retried) detaches the
-- historical partition and attaches the period tables: catalog work only,
-- each proven by its CHECK constraint.  Resumable: the page watermark is
-- committed with each batch, copies are idempotent (ON CONFLICT DO
-- NOTHING on the primary key).
--
-- These are procedures because they commit between steps; PostgreSQL
-- refuses COMMIT in a procedure with a SET clause, so each transaction
-- starts by pinning search_path with set_config(..., true).

CREATE TABLE @extschema@.capacity_conversion (
    table_name          regclass PRIMARY KEY,       -- the new partitioned table
    historical          regclass,                   -- the old table, its partition [MINVALUE, bound)
    staging             regclass,                   -- private copy target during the backfill
    time_column         name NOT NULL,
    granularity         text NOT NULL,
    hash_column         name,
    hash_partitions     integer,
    bound               timestamptz NOT NULL,
    key_columns         name[],
    state               text NOT NULL CHECK (state IN ('converted', 'backfilling', 'done')),
    pages_total         bigint,
    next_page           bigint NOT NULL DEFAULT 0,
    rows_copied         bigint NOT NULL DEFAULT 0,
    converted_at        timestamptz NOT NULL,
    convert_swap_ms     double precision,
    backfill_started_at timestamptz,
    updated_at          timestamptz,
    finished_at         timestamptz,
    backfill_swap_ms    double precision
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_conversion', '');

CREATE VIEW @extschema@.capacity_conversions AS
SELECT c.table_name, c.state, c.historical, c.bound,
       c.rows_copied AS rows_moved,
       CASE WHEN c.state = 'done' THEN 0
            WHEN c.next_page > 0 THEN round(c.rows_copied * greatest(c.pages_total - c.next_page, 0)::numeric / c.next_page)::bigint
            ELSE greatest((SELECT h.reltuples FROM pg_catalog.pg_class h WHERE h.oid = c.historical), 0)::bigint
       END AS rows_left,
       CASE WHEN c.state = 'done' THEN 100.0
            WHEN c.state = 'backfilling' AND c.pages_total > 0
                 THEN round(100.0 * least(c.next_page::numeric / c.pages_total, 1), 1) END AS pct_done,
       round((c.rows_copied / nullif(extract(epoch FROM c.updated_at - c.backfill_started_at), 0))::numeric)
           AS rows_per_second,
       CASE WHEN c.state = 'backfilling' AND c.next_page > 0 THEN
            (c.updated_at - c.backfill_started_at) * (greatest(c.pages_total - c.next_page, 0)::float8 / c.next_page)
       END AS time_left,
       c.convert_swap_ms, c.backfill_swap_ms, c.converted_at, c.backfill_started_at, c.finished_at
  FROM @extschema@.capacity_conversion c;

-- Run statements in one subtransaction under matter_capacity.lock_timeout,
-- retried matter_capacity.lock_retries times with growing pauses; returns
-- the attempts used.  Only a lock timeout is retried.
CREATE FUNCTION @extschema@.capacity_run_bounded(stmts text[], what text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    attempt integer := 0;
    s text;
    retries integer := coalesce(nullif(current_setting('matter_capacity.lock_retries', true), '')::integer, 3);
    timeout text := coalesce(nullif(current_setting('matter_capacity.lock_timeout', true), ''), '100');
    saved text := current_setting('lock_timeout');
BEGIN
    LOOP
        attempt := attempt + 1;
        BEGIN
            PERFORM set_config('lock_timeout', timeout, true);
            FOREACH s IN ARRAY stmts LOOP
                EXECUTE s;
            END LOOP;
            PERFORM set_config('lock_timeout', saved, true);
            RETURN attempt;
        EXCEPTION WHEN lock_not_available THEN
            PERFORM set_config('lock_timeout', saved, true);
            IF attempt > retries THEN
                RAISE EXCEPTION 'matter_capacity: % skipped: lock not available after % attempts of %',
                                what, attempt, timeout
                    USING ERRCODE = '55P03',
                          HINT = 'Long transactions hold the table; run it again later, or raise matter_capacity.lock_retries.';
            END IF;
            PERFORM pg_sleep(least(0.1 * attempt, 1));
        END;
    END LOOP;
END
$$;

-- Replays a write on the historical partition into the backfill copy.
-- Runs as the extension owner so the application role needs no right on
-- the copy; its arguments are checked against capacity_conversion.
CREATE FUNCTION @extschema@.capacity_convert_sync()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stg regclass := TG_ARGV[0]::regclass;
    keys name[];
BEGIN
    SELECT c.key_columns INTO keys FROM @extschema@.capacity_conversion c
     WHERE c.staging = stg AND c.historical = TG_RELID AND c.state = 'backfilling';
    IF keys IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: % is not the backfill copy of %', stg, TG_RELID::regclass
            USING ERRCODE = '55000', HINT = 'Only capacity_convert_backfill() installs this trigger.';
    END IF;
    IF TG_OP <> 'INSERT' THEN
        EXECUTE format('DELETE FROM %s WHERE (%s) = (%s)', stg,
                       (SELECT string_agg(quote_ident(k), ', ') FROM unnest(keys) k),
                       (SELECT string_agg('($1).' || quote_ident(k), ', ') FROM unnest(keys) k))
          USING OLD;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        EXECUTE format('INSERT INTO %s SELECT ($1).* ON CONFLICT DO NOTHING', stg) USING NEW;
    END IF;
    RETURN NULL;
END
$$;

-- Why tbl cannot be converted (raises), or its description.
CREATE FUNCTION @extschema@.capacity_convert_check(tbl regclass, time_column name, granularity text,
                                                   hash_column name, hash_partitions integer, premake integer,
                                                   retention_action text)
RETURNS TABLE(qual text, nspname name, relname name, owner name, time_type regtype, key_columns name[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    bad text;
    tatt smallint;
    hatt smallint;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: the table to convert must not be NULL'
            USING ERRCODE = '22004', HINT = 'Pass the table, e.g. ''"Event"''.';
    END IF;
    SELECT c.relname, n.nspname, n.oid AS nsp, c.relkind, c.relpersistence, c.relispartition,
           c.relrowsecurity, c.relowner, pg_get_userbyid(c.relowner) AS owner
      INTO r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
    qual := format('%I.%I', r.nspname, r.relname);
    nspname := r.nspname;
    relname := r.relname;
    owner := r.owner;
    IF r.relkind = 'p' THEN
        RAISE EXCEPTION 'matter_capacity: table % is already partitioned', qual
            USING ERRCODE = '42809', HINT = 'Manage it with capacity_manage(); nothing to convert.';
    ELSIF r.relkind <> 'r' THEN
        RAISE EXCEPTION 'matter_capacity: % is not an ordinary table', qual
            USING ERRCODE = '42809', HINT = 'Only ordinary tables are converted.';
    ELSIF r.relpersistence = 't' THEN
        RAISE EXCEPTION 'matter_capacity: % is a temporary table', qual
            USING ERRCODE = '42809', HINT = 'Temporary tables live for one session; partition a permanent table.';
    ELSIF r.relpersistence = 'u' THEN
        RAISE EXCEPTION 'matter_capacity: % is unlogged', qual
            USING ERRCODE = '55000', HINT = 'Make it durable first: ALTER TABLE ... SET LOGGED (it rewrites the table).';
    ELSIF r.relispartition THEN
        RAISE EXCEPTION 'matter_capacity: % is already a partition', qual
            USING ERRCODE = '42809', HINT = 'Convert its parent instead.';
    END IF;
    IF NOT pg_has_role(current_user, r.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'matter_capacity: must be owner of table % to convert it', qual
            USING ERRCODE = '42501', HINT = format('Run it as %I or a member of that role.', r.owner);
    END IF;
    SELECT string_agg(x, ', ') INTO bad FROM (
        SELECT i.inhrelid::regclass::text AS x FROM pg_inherits i WHERE i.inhparent = tbl
        UNION ALL SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = tbl) s;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % takes part in table inheritance (%)', qual, bad
            USING ERRCODE = '55000', HINT = 'Detach the inheritance (ALTER TABLE ... NO INHERIT) first.';
    END IF;
    IF granularity IS NULL OR granularity NOT IN ('day', 'week', 'month') THEN
        RAISE EXCEPTION 'matter_capacity: granularity "%" for % is not day, week or month', granularity, qual
            USING ERRCODE = '22023', HINT = 'Use ''day'', ''week'' (ISO, Monday) or ''month''.';
    END IF;
    SELECT a.attnum, a.atttypid::regtype INTO tatt, time_type
      FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = time_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF tatt IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: column "%" of % does not exist', time_column, qual
            USING ERRCODE = '42703', HINT = 'Name the column that holds the row''s time, e.g. "createdAt".';
    ELSIF time_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'matter_capacity: column "%" of % is %, not a date or timestamp', time_column, qual, time_type
            USING ERRCODE = '42804', HINT = 'Partition by a timestamptz, timestamp or date column.';
    END IF;
    IF (hash_column IS NULL) <> (hash_partitions IS NULL) THEN
        RAISE EXCEPTION 'matter_capacity: hash_column and hash_partitions of % go together', qual
            USING ERRCODE = '22023', HINT = 'Pass both (e.g. ''orgId'', 16) or neither.';
    END IF;
    IF hash_column IS NOT NULL THEN
        IF hash_partitions NOT BETWEEN 2 AND 1024 THEN
            RAISE EXCEPTION 'matter_capacity: % hash partitions for % is out of range', hash_partitions, qual
                USING ERRCODE = '22023', HINT = 'Use 2 to 1024 hash partitions (16 is typical).';
        END IF;
        SELECT a.attnum INTO hatt FROM pg_attribute a
         WHERE a.attrelid = tbl AND a.attname = hash_column AND a.attnum > 0 AND NOT a.attisdropped;
        IF hatt IS NULL THEN
            RAISE EXCEPTION 'matter_capacity: column "%" of % does not exist', hash_column, qual
                USING ERRCODE = '42703', HINT = 'Name the tenant column, e.g. "orgId".';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_opclass o ON o.opcintype = a.atttypid
                         JOIN pg_am am ON am.oid = o.opcmethod
                        WHERE a.attrelid = tbl AND a.attnum = hatt AND am.amname = 'hash' AND o.opcdefault) THEN
            RAISE EXCEPTION 'matter_capacity: column "%" of % has a type without a hash operator class', hash_column, qual
                USING ERRCODE = '42704', HINT = 'Hash-partition by a column of a hashable type (text, uuid, integer ...), or leave hash_column NULL.';
        END IF;
    END IF;
    IF premake IS NULL OR premake NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'matter_capacity: premake % for % is out of range', premake, qual
            USING ERRCODE = '22023', HINT = 'Create 1 to 1000 periods ahead (4 is typical).';
    END IF;
    IF retention_action IS NULL OR retention_action NOT IN ('detach', 'drop') THEN
        RAISE EXCEPTION 'matter_capacity: retention_action "%" for % is not detach or drop', retention_action, qual
            USING ERRCODE = '22023', HINT = 'detach keeps old periods as tables; drop removes them.';
    END IF;
    -- what PostgreSQL refuses on a partitioned table, or what would not follow the rename
    SELECT string_agg(format('%I %s', i.relname, substring(pg_get_indexdef(x.indexrelid) FROM ' USING \w+ (.*)$')),
                      ', ' ORDER BY i.relname)
      INTO bad FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
     WHERE x.indrelid = tbl AND x.indisunique
       AND NOT (tatt = ANY (x.indkey::smallint[]) AND (hatt IS NULL OR hatt = ANY (x.indkey::smallint[])));
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: unique index % of % does not include the partition column(s) %', bad, qual,
                        concat_ws(', ', quote_ident(time_column), quote_ident(hash_column))
            USING ERRCODE = '0A000',
                  HINT = 'A partitioned table''s primary key and unique constraints must include the partition columns. '
                      || 'Build the wider index first (CREATE UNIQUE INDEX CONCURRENTLY ... (<key columns>, '
                      || concat_ws(', ', quote_ident(time_column), quote_ident(hash_column))
                      || ')), then swap it in: ALTER TABLE ... DROP CONSTRAINT ..., ADD PRIMARY KEY USING INDEX ...';
    END IF;
    SELECT string_agg(format('%I on %s', k.conname, k.conrelid::regclass), ', ' ORDER BY k.conname)
      INTO bad FROM pg_constraint k WHERE k.contype = 'f' AND k.confrelid = tbl;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: foreign keys point to %: %', qual, bad
            USING ERRCODE = '0A000',
                  HINT = 'Drop them, convert, then re-create them against a key that includes the partition columns.';
    END IF;
    SELECT string_agg(format('%I', k.conname), ', ') INTO bad FROM pg_constraint k
     WHERE k.conrelid = tbl AND k.contype = 'x';
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % has exclusion constraints (%), which partitioned tables do not support', qual, bad
            USING ERRCODE = '0A000', HINT = 'Drop them (enforce the rule in the application or per partition) before converting.';
    END IF;
    SELECT string_agg(format('%I', t.tgname), ', ' ORDER BY t.tgname) INTO bad
      FROM pg_trigger t WHERE t.tgrelid = tbl AND NOT t.tgisinternal;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % has triggers: %', qual, bad
            USING ERRCODE = '0A000', HINT = 'Drop them, convert, and create them again on the partitioned table.';
    END IF;
    SELECT string_agg(format('%I', w.rulename), ', ') INTO bad FROM pg_rewrite w WHERE w.ev_class = tbl;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % has rules: %', qual, bad
            USING ERRCODE = '0A000', HINT = 'Partitioned tables cannot carry rules; replace them with triggers after converting.';
    END IF;
    IF r.relrowsecurity OR EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = tbl) THEN
        RAISE EXCEPTION 'matter_capacity: % has row-level security', qual
            USING ERRCODE = '0A000', HINT = 'Disable it and drop its policies, convert, then enable and create them again.';
    END IF;
    SELECT string_agg(format('%I', p.pubname), ', ' ORDER BY p.pubname) INTO bad FROM pg_publication p
     WHERE p.puballtables
        OR EXISTS (SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = p.oid AND pr.prrelid = tbl)
        OR EXISTS (SELECT 1 FROM pg_publication_namespace pn WHERE pn.pnpubid = p.oid AND pn.pnnspid = r.nsp);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % is published (%)', qual, bad
            USING ERRCODE = '0A000',
                  HINT = 'Take it out of the publications, convert, then publish the partitioned table (publish_via_partition_root).';
    END IF;
    SELECT string_agg(DISTINCT d, ', ') INTO bad FROM (
        SELECT w.ev_class::regclass::text AS d FROM pg_depend x JOIN pg_rewrite w ON w.oid = x.objid
         WHERE x.classid = 'pg_rewrite'::regclass AND x.refclassid = 'pg_class'::regclass
           AND x.refobjid = tbl AND w.ev_class <> tbl
        UNION ALL
        SELECT x.objid::regprocedure::text FROM pg_depend x
         WHERE x.classid = 'pg_proc'::regclass AND x.refclassid = 'pg_class'::regclass AND x.refobjid = tbl) s;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: views or functions depend on %: %', qual, bad
            USING ERRCODE = '0A000',
                  HINT = 'They would keep reading the old table. Drop them, convert, and create them again.';
    END IF;
    SELECT array_agg(a.attname ORDER BY k.n) INTO key_columns
      FROM pg_index x, unnest(x.indkey::smallint[]) WITH ORDINALITY k(att, n), pg_attribute a
     WHERE x.indrelid = tbl AND x.indisprimary AND a.attrelid = tbl AND a.attnum = k.att;
    RETURN NEXT;
END
$$;

CREATE PROCEDURE @extschema@.capacity_convert(tbl regclass, time_column name, granularity text,
                                              hash_column name DEFAULT NULL, hash_partitions integer DEFAULT NULL,
                                              premake integer DEFAULT 4, retention interval DEFAULT NULL,
                                              retention_action text DEFAULT 'detach',
                                              dry_run boolean DEFAULT false, as_of timestamptz DEFAULT now())
LANGUAGE plpgsql
AS $$
DECLARE
    d record;
    bound timestamptz;
    bound_lit text;
    bound_label text;
    cname name;
    tmpname name;
    histname name;
    tmpqual text;
    histqual text;
    newrel regclass;
    plan text[] := '{}';
    prep text[] := '{}';
    swap text[] := '{}';
    x record;
    failed boolean := false;
    bad bigint;
    t0 timestamptz;
    swap_ms float8;
    step integer := 0;
    s text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'matter_capacity: capacity_convert cannot run while the server is in recovery'
            USING ERRCODE = '25006', HINT = 'Run it on the primary.';
    END IF;
    SELECT * INTO d FROM @extschema@.capacity_convert_check(tbl, time_column, granularity, hash_column,
                                                            hash_partitions, premake, retention_action);
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'matter_capacity: as_of of the conversion of % must be a finite time', d.qual
            USING ERRCODE = '22008', HINT = 'Omit it to use now().';
    END IF;
    bound := @extschema@.capacity_period_start(as_of, granularity, 1);
    bound_lit := @extschema@.capacity_time_literal(bound, d.time_type);
    bound_label := to_char(bound AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC';
    cname := left(d.relname, 48) || '_convert_bound';
    tmpname := left(d.relname, 52) || '_converting';
    histname := left(d.relname, 52) || '_historical';
    tmpqual := format('%I.%I', d.nspname, tmpname);
    histqual := format('%I.%I', d.nspname, histname);
    IF to_regclass(tmpqual) IS NOT NULL OR to_regclass(histqual) IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % or % already exists', tmpqual, histqual
            USING ERRCODE = '42P07', HINT = 'A previous conversion left it; drop or rename it first.';
    END IF;

    -- the new parent: same columns, defaults, identity, storage, comments;
    -- constraints and indexes re-created with their definitions
    prep := prep || format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED '
                           'INCLUDING STORAGE INCLUDING COMMENTS INCLUDING COMPRESSION INCLUDING STATISTICS) '
                           'PARTITION BY RANGE (%I)', tmpqual, d.qual, time_column);
    FOR x IN SELECT k.conname, k.contype, pg_get_constraintdef(k.oid) AS def FROM pg_constraint k
              WHERE k.conrelid = tbl AND k.contype IN ('c', 'f', 'p', 'u') AND k.conname <> cname
              ORDER BY k.contype, k.conname LOOP
        -- index-backed constraints get a temporary name; the swap gives them theirs
        prep := prep || format('ALTER TABLE %s ADD CONSTRAINT %I %s', tmpqual,
                               CASE WHEN x.contype IN ('p', 'u') THEN left(x.conname, 56) || '_conv' ELSE x.conname END,
                               x.def);
        IF x.contype IN ('p', 'u') THEN
            swap := swap || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, x.conname, left(x.conname, 52) || '_historical')
                         || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, left(x.conname, 56) || '_conv', x.conname);
        END IF;
    END LOOP;
    FOR x IN SELECT i.relname, pg_get_indexdef(ix.indexrelid) AS def FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
              WHERE ix.indrelid = tbl AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = ix.indexrelid)
              ORDER BY i.relname LOOP
        prep := prep || replace(x.def, format('INDEX %I ON %s ', x.relname, d.qual),
                                format('INDEX %I ON %s ', left(x.relname, 56) || '_conv', tmpqual));
        swap := swap || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, x.relname, left(x.relname, 52) || '_historical')
                     || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, left(x.relname, 56) || '_conv', x.relname);
    END LOOP;
    FOR x IN SELECT a.privilege_type, a.is_grantable,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS grantee
               FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = tbl AND a.grantee <> c.relowner LOOP
        prep := prep || format('GRANT %s ON %s TO %s%s', x.privilege_type, tmpqual, x.grantee,
                               CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    IF obj_description(tbl, 'pg_class') IS NOT NULL THEN
        prep := prep || format('COMMENT ON TABLE %s IS %L', tmpqual, obj_description(tbl, 'pg_class'));
    END IF;
    prep := prep || format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', d.nspname, left(d.relname, 55) || '_default', tmpqual);
    IF d.owner <> current_user THEN
        prep := prep || format('ALTER TABLE %s OWNER TO %I', tmpqual, d.owner)
                     || format('ALTER TABLE %I.%I OWNER TO %I', d.nspname, left(d.relname, 55) || '_default', d.owner);
    END IF;

    -- the swap: identity values carried over, serial sequences re-owned,
    -- names exchanged, the old table attached as the historical partition
    swap := ARRAY[format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', d.qual)] || swap;
    FOR x IN SELECT a.attname FROM pg_attribute a WHERE a.attrelid = tbl AND a.attidentity <> '' AND NOT a.attisdropped LOOP
        swap := swap || format('SELECT setval(pg_get_serial_sequence(%L, %L), v) FROM pg_sequence_last_value(pg_get_serial_sequence(%L, %L)) v WHERE v IS NOT NULL',
                               tmpqual, x.attname, d.qual, x.attname)
                     || format('ALTER TABLE %s ALTER COLUMN %I DROP IDENTITY', d.qual, x.attname);
    END LOOP;
    FOR x IN SELECT s.oid::regclass AS seq, a.attname FROM pg_depend dp JOIN pg_class s ON s.oid = dp.objid
               JOIN pg_attribute a ON a.attrelid = dp.refobjid AND a.attnum = dp.refobjsubid
              WHERE dp.classid = 'pg_class'::regclass AND dp.refobjid = tbl AND dp.deptype = 'a' AND s.relkind = 'S' LOOP
        swap := swap || format('ALTER SEQUENCE %s OWNED BY %s.%I', x.seq, tmpqual, x.attname);
    END LOOP;
    swap := swap || format('ALTER TABLE %s RENAME TO %I', d.qual, histname)
                 || format('ALTER TABLE %s RENAME TO %I', tmpqual, d.relname)
                 || format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (MINVALUE) TO (%s)', d.qual, histqual, bound_lit);

    plan := ARRAY[format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NOT NULL AND %I < %s) NOT VALID',
                         d.qual, cname, time_column, time_column, bound_lit),
                  format('ALTER TABLE %s VALIDATE CONSTRAINT %I', d.qual, cname)];
    IF dry_run THEN
        RAISE NOTICE 'capacity_convert(%): dry run, nothing changed', d.qual;
        RAISE NOTICE '1. under the lock timeout: %', plan[1];
        RAISE NOTICE '2. online (reads the table, blocks no writer): %', plan[2];
        FOREACH s IN ARRAY prep LOOP
            step := step + 1;
            RAISE NOTICE '3.%. %', step, s;
        END LOOP;
        step := 0;
        FOREACH s IN ARRAY swap LOOP
            step := step + 1;
            RAISE NOTICE '4.%. in one transaction under the lock timeout: %', step, s;
        END LOOP;
        RAISE NOTICE '5. capacity_manage(%, %, %, ...), then capacity_rollover: periods from % on', d.qual,
                     quote_ident(time_column), granularity, bound_label;
        RETURN;
    END IF;

    -- 1. the bound, enforced from now on; 2. proven for the old rows online
    PERFORM @extschema@.capacity_run_bounded(plan[1:1], format('adding the bound constraint to %s', d.qual));
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    BEGIN
        EXECUTE plan[2];
    EXCEPTION WHEN check_violation THEN
        failed := true;
    END;
    IF failed THEN
        EXECUTE format('SELECT count(*) FROM %s WHERE NOT (%I IS NOT NULL AND %I < %s)',
                       d.qual, time_column, time_column, bound_lit) INTO bad;
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format('ALTER TABLE %s DROP CONSTRAINT %I', d.qual, cname)],
                                                 format('removing the bound constraint from %s', d.qual));
        COMMIT;
        RAISE EXCEPTION 'matter_capacity: % has % rows whose % is NULL or not before %; nothing was converted',
                        d.qual, bad, quote_ident(time_column), bound_label
            USING ERRCODE = '23514',
                  HINT = 'Every row must belong to a period: fill or remove NULL times, and move rows dated in future periods.';
    END IF;
    COMMIT;

    -- 3. the new parent, invisible under its temporary name
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    BEGIN
        FOREACH s IN ARRAY prep LOOP
            EXECUTE s;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        failed := true;
        GET STACKED DIAGNOSTICS s = MESSAGE_TEXT;
    END;
    IF failed THEN
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format('ALTER TABLE %s DROP CONSTRAINT %I', d.qual, cname)],
                                                 format('removing the bound constraint from %s', d.qual));
        COMMIT;
        RAISE EXCEPTION 'matter_capacity: the partitioned copy of % could not be prepared: %; nothing was converted', d.qual, s
            USING ERRCODE = '55000', HINT = 'Fix the cause; the dry run (dry_run => true) lists every statement.';
    END IF;
    COMMIT;

    -- 4. the swap, short and bounded
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    t0 := clock_timestamp();
    BEGIN
        PERFORM @extschema@.capacity_run_bounded(swap, format('swapping %s for its partitioned copy', d.qual));
    EXCEPTION WHEN OTHERS THEN
        failed := true;
        GET STACKED DIAGNOSTICS s = MESSAGE_TEXT;
    END;
    IF failed THEN
        EXECUTE format('DROP TABLE %s', tmpqual);
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format('ALTER TABLE %s DROP CONSTRAINT %I', d.qual, cname)],
                                                 format('removing the bound constraint from %s', d.qual));
        COMMIT;
        RAISE EXCEPTION 'matter_capacity: % was not converted: %', d.qual, s
            USING ERRCODE = '55P03', HINT = 'Nothing changed; run it again when the table is less busy.';
    END IF;
    swap_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    COMMIT;

    -- 5. the policy, and the periods from the bound on
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    newrel := to_regclass(d.qual);
    PERFORM @extschema@.capacity_manage(newrel, time_column, granularity, hash_column, hash_partitions,
                                        premake, retention, retention_action, true);
    INSERT INTO @extschema@.capacity_conversion
        (table_name, historical, time_column, granularity, hash_column, hash_partitions, bound,
         key_columns, state, converted_at, convert_swap_ms)
    VALUES (newrel, tbl, time_column, granularity, hash_column, hash_partitions, bound,
            d.key_columns, 'converted', clock_timestamp(), swap_ms);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM count(*) FROM @extschema@.capacity_rollover(newrel, as_of);
    COMMIT;
    RAISE NOTICE 'capacity_convert: % is partitioned; % holds the rows before %; the swap held its lock % ms. Next: CALL capacity_convert_backfill(%)',
                 d.qual, histqual, bound_label, round(swap_ms::numeric, 1), quote_literal(d.qual);
END
$$;
COMMENT ON PROCEDURE @extschema@.capacity_convert IS
    'Turn an ordinary table into a managed partitioned table of the same name online; the old rows stay in a historical partition until capacity_convert_backfill.';

CREATE PROCEDURE @extschema@.capacity_convert_backfill(tbl regclass, batch_rows integer DEFAULT 10000,
                                                       max_batches integer DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    cv @extschema@.capacity_conversion;
    qual text;
    nsp name;
    rel name;
    owner name;
    typ regtype;
    stagename name;
    stagequal text;
    lo timestamptz;
    p timestamptz;
    pname text;
    pqual text;
    nblocks bigint;
    per_page float8;
    pages bigint;
    n bigint;
    batches integer := 0;
    swap text[];
    x record;
    t0 timestamptz;
    blk integer := current_setting('block_size')::integer;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'matter_capacity: capacity_convert_backfill cannot run while the server is in recovery'
            USING ERRCODE = '25006', HINT = 'Run it on the primary.';
    END IF;
    IF batch_rows IS NULL OR batch_rows < 1 THEN
        RAISE EXCEPTION 'matter_capacity: batch_rows % must be a positive number', batch_rows
            USING ERRCODE = '22023', HINT = 'Each batch is one transaction; 10000 rows is typical.';
    END IF;
    SELECT * INTO cv FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'matter_capacity: % was not converted by capacity_convert', coalesce(tbl::text, 'NULL')
            USING ERRCODE = '42704', HINT = 'SELECT * FROM capacity_conversions lists the conversions.';
    END IF;
    IF cv.state = 'done' THEN
        RAISE NOTICE 'capacity_convert_backfill: % is already backfilled', tbl;
        RETURN;
    END IF;
    IF cv.key_columns IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: % has no primary key, so writes during the backfill cannot be replayed', tbl
            USING ERRCODE = '0A000',
                  HINT = 'Add a primary key that includes the partition columns, then run the backfill again.';
    END IF;
    IF NOT pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = tbl), 'USAGE') THEN
        RAISE EXCEPTION 'matter_capacity: must be owner of table % to backfill it', tbl
            USING ERRCODE = '42501', HINT = 'Run it as the table''s owner.';
    END IF;
    SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), a.atttypid::regtype
      INTO nsp, rel, owner, typ
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = cv.time_column
     WHERE c.oid = tbl;
    qual := format('%I.%I', nsp, rel);
    stagename := left(rel, 54) || '_backfill';
    stagequal := format('%I.%I', nsp, stagename);

    IF cv.state = 'converted' THEN
        -- the period tables, gathered under a private staging table, and
        -- the trigger that replays writes on the historical partition
        EXECUTE format('SELECT min(%I) FROM ONLY %s', cv.time_column, cv.historical::text) INTO lo;
        lo := coalesce(lo, cv.bound - interval '1 day');
        -- constraints, indexes and foreign keys as the parent has them, so the
        -- period tables attach later without building or validating anything
        EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING INDEXES '
                       'INCLUDING CONSTRAINTS INCLUDING STORAGE) PARTITION BY RANGE (%I)', stagequal, qual, cv.time_column);
        FOR x IN SELECT k.conname, pg_get_constraintdef(k.oid) AS def FROM pg_constraint k
                  WHERE k.conrelid = tbl AND k.contype = 'f' LOOP
            EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', stagequal, x.conname, x.def);
        END LOOP;
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', nsp, left(stagename, 55) || '_default', stagequal);
        p := @extschema@.capacity_period_start(lo, cv.granularity, 0);
        WHILE p < cv.bound LOOP
            pname := @extschema@.capacity_partition_name(rel, cv.granularity, p);
            pqual := format('%I.%I', nsp, pname);
            EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS '
                           'INCLUDING STORAGE, '
                           'CONSTRAINT matter_capacity_bounds CHECK (%I IS NOT NULL AND %I >= %s AND %I < %s))%s',
                           pqual, qual, cv.time_column, cv.time_column,
                           @extschema@.capacity_time_literal(p, typ), cv.time_column,
                           @extschema@.capacity_time_literal(@extschema@.capacity_period_start(p, cv.granularity, 1), typ),
                           CASE WHEN cv.hash_column IS NULL THEN ''
                                ELSE format(' PARTITION BY HASH (%I)', cv.hash_column) END);
            FOR r IN 0 .. coalesce(cv.hash_partitions, 0) - 1 LOOP
                EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES WITH (MODULUS %s, REMAINDER %s)', nsp,
                               @extschema@.capacity_partition_name(rel, cv.granularity, p, r, cv.hash_partitions),
                               pqual, cv.hash_partitions, r);
            END LOOP;
            EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)', stagequal, pqual,
                           @extschema@.capacity_time_literal(p, typ),
                           @extschema@.capacity_time_literal(@extschema@.capacity_period_start(p, cv.granularity, 1), typ));
            p := @extschema@.capacity_period_start(p, cv.granularity, 1);
        END LOOP;
        FOR x IN SELECT c.oid::regclass AS r FROM pg_partition_tree(stagequal::regclass) t JOIN pg_class c ON c.oid = t.relid
                  WHERE c.relkind IN ('r', 'p') LOOP
            IF owner <> current_user THEN
                EXECUTE format('ALTER TABLE %s OWNER TO %I', x.r, owner);
            END IF;
        END LOOP;
        UPDATE @extschema@.capacity_conversion c
           SET staging = stagequal::regclass, state = 'backfilling', next_page = 0, rows_copied = 0,
               pages_total = pg_relation_size(cv.historical) / blk,
               backfill_started_at = clock_timestamp(), updated_at = clock_timestamp()
         WHERE c.table_name = tbl;
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format(
                    'CREATE TRIGGER capacity_convert_sync AFTER INSERT OR UPDATE OR DELETE ON %s '
                    'FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_convert_sync(%L)',
                    cv.historical::text, stagequal)],
                format('installing the write replay on %s', cv.historical::text));
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        SELECT * INTO cv FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl;
        RAISE NOTICE 'capacity_convert_backfill: % periods from % to % prepared; copying % pages of %',
                     (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = cv.staging) - 1,
                     to_char(lo AT TIME ZONE 'UTC', 'YYYY-MM-DD'), to_char(cv.bound AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                     cv.pages_total, cv.historical;
    END IF;

    -- batches of pages, one transaction each; the watermark commits with them
    LOOP
        nblocks := pg_relation_size(cv.historical) / blk;
        EXIT WHEN cv.next_page >= nblocks;
        IF max_batches IS NOT NULL AND batches >= max_batches THEN
            RAISE NOTICE 'capacity_convert_backfill: stopped after % batches at page % of %; CALL it again to go on',
                         batches, cv.next_page, nblocks;
            RETURN;
        END IF;
        SELECT CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN c.reltuples / c.relpages ELSE 100 END
          INTO per_page FROM pg_class c WHERE c.oid = cv.historical;
        pages := greatest(1, ceil(batch_rows / per_page))::bigint;
        EXECUTE format('INSERT INTO %s SELECT * FROM ONLY %s WHERE ctid >= %L::tid AND ctid < %L::tid '
                       'FOR SHARE ON CONFLICT DO NOTHING', cv.staging::text, cv.historical::text,
                       format('(%s,0)', cv.next_page), format('(%s,0)', cv.next_page + pages));
        GET DIAGNOSTICS n = ROW_COUNT;
        UPDATE @extschema@.capacity_conversion c
           SET next_page = cv.next_page + pages, rows_copied = c.rows_copied + n,
               pages_total = greatest(c.pages_total, nblocks), updated_at = clock_timestamp()
         WHERE c.table_name = tbl
        RETURNING * INTO cv;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        batches := batches + 1;
        IF batches % 50 = 0 THEN
            RAISE NOTICE 'capacity_convert_backfill: % rows copied, page % of %', cv.rows_copied, cv.next_page, nblocks;
        END IF;
    END LOOP;

    -- the switch: the historical partition out, the period tables in; all
    -- proven by constraints, so the lock is held for catalog work only
    swap := ARRAY[format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', qual),
                  format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', cv.historical::text),
                  format('INSERT INTO %s SELECT * FROM ONLY %s WHERE ctid >= %L::tid ON CONFLICT DO NOTHING',
                         cv.staging::text, cv.historical::text, format('(%s,0)', cv.next_page)),
                  format('ALTER TABLE %s DETACH PARTITION %s', qual, cv.historical::text),
                  format('DROP TRIGGER capacity_convert_sync ON %s', cv.historical::text)];
    FOR x IN SELECT i.inhrelid::regclass AS part, pg_get_expr(c.relpartbound, c.oid) AS bnd
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = cv.staging ORDER BY 2 LOOP
        IF x.bnd = 'DEFAULT' THEN
            CONTINUE;
        END IF;
        swap := swap || format('ALTER TABLE %s DETACH PARTITION %s', cv.staging::text, x.part)
                     || format('ALTER TABLE %s ATTACH PARTITION %s %s', qual, x.part, x.bnd);
    END LOOP;
    -- rows older than the first period (written during the backfill) go to the default partition
    swap := swap || format('INSERT INTO %s OVERRIDING SYSTEM VALUE SELECT * FROM %I.%I', qual, nsp, left(stagename, 55) || '_default')
                 || format('DROP TABLE %s', cv.staging::text);
    t0 := clock_timestamp();
    PERFORM @extschema@.capacity_run_bounded(swap, format('switching %s to its backfilled periods', qual));
    UPDATE @extschema@.capacity_conversion c
       SET state = 'done', staging = NULL, finished_at = clock_timestamp(), updated_at = clock_timestamp(),
           backfill_swap_ms = extract(epoch FROM clock_timestamp() - t0) * 1000
     WHERE c.table_name = tbl
    RETURNING * INTO cv;
    COMMIT;
    RAISE NOTICE 'capacity_convert_backfill: % done: % rows in period partitions; the switch held its lock % ms. The old table % is detached: drop it once checked.',
                 qual, cv.rows_copied, round(cv.backfill_swap_ms::numeric, 1), cv.historical;
END
$$;
COMMENT ON PROCEDURE @extschema@.capacity_convert_backfill IS
    'Move the historical partition left by capacity_convert into period partitions, a batch per transaction; resumable; progress in capacity_conversions.';
-- What pg_dump keeps.  Configuration and history tables are registered
-- with pg_extension_config_dump next to their definitions.  The tables
-- below also hold rows this script ships (stages, triggers, settings,
-- bindings, indicators); CREATE EXTENSION makes those again on restore, so
-- only the user's rows are dumped, and three row triggers keep the two in
-- step:
--   * an edited shipped row becomes the user's (shipped = false), so it is
--     dumped;
--   * a row inserted with the key of a shipped, unedited row replaces it;
--     that is how pg_restore puts an edited default back over the fresh one;
--   * deleting a shipped row is remembered in capacity_removed_default,
--     itself dumped, and restoring that record deletes the fresh copy.

CREATE TABLE @extschema@.capacity_removed_default (
    table_name  text NOT NULL,
    key         text NOT NULL,
    removed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, key)
);
COMMENT ON TABLE @extschema@.capacity_removed_default IS
    'Shipped catalog rows the user deleted; kept by pg_dump so a restore deletes them again.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_removed_default', '');

-- Every catalog row present at this point was installed by this script.
UPDATE @extschema@.capacity_stage_def SET shipped = true;
UPDATE @extschema@.capacity_setting SET shipped = true;
UPDATE @extschema@.capacity_table_binding SET shipped = true;
UPDATE @extschema@.capacity_indicator SET shipped = true;
UPDATE @extschema@.capacity_trigger SET shipped = true;

CREATE FUNCTION @extschema@.capacity_shipped_row_edited()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.shipped AND NEW.shipped
       AND (pg_catalog.to_jsonb(NEW) - 'shipped') IS DISTINCT FROM (pg_catalog.to_jsonb(OLD) - 'shipped') THEN
        NEW.shipped := false;
    END IF;
    RETURN NEW;
END
$$;

-- TG_ARGV[0]: the key column.
CREATE FUNCTION @extschema@.capacity_shipped_row_replace()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keycol  text := TG_ARGV[0];
    sets    text;
    n       bigint;
BEGIN
    SELECT string_agg(format('%I = ($1).%I', a.attname, a.attname), ', ' ORDER BY a.attnum) INTO sets
      FROM pg_attribute a WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE format('UPDATE %I.%I t SET %s WHERE t.%I = ($1).%I AND t.shipped',
                   TG_TABLE_SCHEMA, TG_TABLE_NAME, sets, keycol, keycol) USING NEW;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        RETURN NULL;            -- replaced in place
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION @extschema@.capacity_shipped_row_removed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.shipped THEN
        INSERT INTO @extschema@.capacity_removed_default (table_name, key)
        VALUES (TG_TABLE_NAME, pg_catalog.to_jsonb(OLD) ->> TG_ARGV[0])
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN OLD;
END
$$;

-- Restoring a removal record deletes the shipped copy CREATE EXTENSION made.
CREATE FUNCTION @extschema@.capacity_removed_default_apply()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keycol text;
BEGIN
    keycol := CASE NEW.table_name
                  WHEN 'capacity_stage_def' THEN 'stage'
                  WHEN 'capacity_setting' THEN 'name'
                  WHEN 'capacity_table_binding' THEN 'logical_name'
                  WHEN 'capacity_indicator' THEN 'name'
                  WHEN 'capacity_trigger' THEN 'name'
              END;
    IF keycol IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: "%" is not a catalog table with shipped rows', NEW.table_name
            USING ERRCODE = '22023',
                  HINT = 'capacity_removed_default records rows deleted from capacity_stage_def, capacity_setting, capacity_table_binding, capacity_indicator or capacity_trigger.';
    END IF;
    EXECUTE format('DELETE FROM %I.%I t WHERE t.%I::text = $1 AND t.shipped', TG_TABLE_SCHEMA, NEW.table_name, keycol)
      USING NEW.key;
    RETURN NULL;
END
$$;
CREATE TRIGGER capacity_removed_default_apply AFTER INSERT ON @extschema@.capacity_removed_default
    FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_removed_default_apply();

-- The three row triggers on each table with shipped rows, by its key column.
DO $$
DECLARE
    t text;
    k text;
BEGIN
    FOR t, k IN VALUES ('capacity_stage_def', 'stage'), ('capacity_setting', 'name'),
                       ('capacity_table_binding', 'logical_name'), ('capacity_indicator', 'name'),
                       ('capacity_trigger', 'name')
    LOOP
        EXECUTE format('CREATE TRIGGER capacity_shipped_row_edited BEFORE UPDATE ON @extschema@.%I '
                       'FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_shipped_row_edited()', t);
        EXECUTE format('CREATE TRIGGER capacity_shipped_row_replace BEFORE INSERT ON @extschema@.%I '
                       'FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_shipped_row_replace(%L)', t, k);
        EXECUTE format('CREATE TRIGGER capacity_shipped_row_removed AFTER DELETE ON @extschema@.%I '
                       'FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_shipped_row_removed(%L)', t, k);
    END LOOP;
END
$$;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_stage_def', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_setting', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_table_binding', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_indicator', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_trigger', 'WHERE NOT shipped');

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_shipped_row_edited(), @extschema@.capacity_shipped_row_replace(),
                           @extschema@.capacity_shipped_row_removed(), @extschema@.capacity_removed_default_apply() FROM PUBLIC;
-- Privileges: mutating functions are not for PUBLIC; views are readable by
-- pg_monitor.  Catalog tables are written by our C code as the extension
-- owner, so nobody needs rights on them.

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_rollover(regclass, timestamptz, boolean) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_rollover_proc(regclass, timestamptz, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_set_hash_partitions(regclass, integer, timestamptz) FROM PUBLIC;

GRANT SELECT ON @extschema@.capacity_policies, @extschema@.capacity_partitions,
                @extschema@.capacity_rollover_log TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_sample_now(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_register_probe(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_register_push(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_record(text, double precision, jsonb, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_set_pool_size(regrole, integer) FROM PUBLIC;
GRANT SELECT ON @extschema@.capacity_latest, @extschema@.capacity_indicator_status TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_eval(timestamptz, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_stage_eval(timestamptz, jsonb, interval) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_stage(timestamptz, interval) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_set_stage(integer, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_declare(text, text, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_set_threshold(text, double precision) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_bind_table(text, regclass) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_decide_at(text, text, timestamptz, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_decide(text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_stage(timestamptz, interval),
                          @extschema@.capacity_stage_eval(timestamptz, jsonb, interval),
                          @extschema@.capacity_trigger_eval(timestamptz, jsonb) TO pg_monitor;
GRANT SELECT ON @extschema@.capacity_stages, @extschema@.capacity_trigger_status,
                @extschema@.capacity_decisions TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report_at(timestamptz, jsonb, interval) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report(timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_report(timestamptz, interval),
                          @extschema@.capacity_report_at(timestamptz, jsonb, interval) TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_explain_as(oid, text, text, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_explain_register_defaults(regclass, regrole) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_explain_register(text, text, integer, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_explain_run(timestamptz) FROM PUBLIC;
GRANT SELECT ON @extschema@.capacity_explain_result TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_resolved(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_forecast_eval(timestamptz, interval, jsonb, @extschema@.capacity_trigger_row[], integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_forecast(timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_forecast(timestamptz, interval),
                          @extschema@.capacity_forecast_eval(timestamptz, interval, jsonb, @extschema@.capacity_trigger_row[], integer),
                          @extschema@.capacity_trigger_resolved(jsonb) TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_roll_up_days(timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_convert(regclass, name, text, name, integer, integer, interval, text, boolean, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_convert_backfill(regclass, integer, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_convert_sync() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_convert_check(regclass, name, text, name, integer, integer, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_run_bounded(text[], text) FROM PUBLIC;
GRANT SELECT ON @extschema@.capacity_conversions TO pg_monitor;
