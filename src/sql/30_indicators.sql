-- Indicators: what is measured, the samples, their hourly rollups.

-- The indicator-name rule lives once, in C (src/probes.c): true, or the
-- error 42602 naming the bad name.
CREATE FUNCTION @extschema@.capacity_check_indicator_name(name text)
RETURNS boolean
LANGUAGE c IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_check_indicator_name';
COMMENT ON FUNCTION @extschema@.capacity_check_indicator_name(text) IS
    'true when name is a valid indicator name (a lower-case letter, then lower-case letters, digits and _, at most 63 bytes); else error 42602 naming it.';
CREATE FUNCTION @extschema@.capacity_indicator_name_valid(name text)
RETURNS boolean
LANGUAGE c IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_indicator_name_valid';
COMMENT ON FUNCTION @extschema@.capacity_indicator_name_valid(text) IS
    'Whether name is a valid indicator name (the rule of capacity_check_indicator_name), without raising; false for NULL.';

CREATE TABLE @extschema@.capacity_indicator (
    name        text PRIMARY KEY CONSTRAINT capacity_indicator_name_check
                                 CHECK (@extschema@.capacity_check_indicator_name(name)),
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
-- by capacity_roll_up_days() (rollup.c); kept as long as those.
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
    p95             double precision,          -- exact, of the raw samples: see capacity_daily_p95
    PRIMARY KEY (indicator, labels, day)
);
CREATE INDEX ON @extschema@.capacity_sample_daily (day);

-- The indicators whose daily rollups keep a p95 (the rollup reads this,
-- never the plans): those an N-day plan condition reads by p95.  Kept in
-- step with the conditions by the plans piece (a trigger on
-- capacity_plan_condition, 40_stages.sql), so not dumped: a restore
-- rebuilds it as it loads the conditions.
CREATE TABLE @extschema@.capacity_daily_p95 (
    indicator  text PRIMARY KEY
);
COMMENT ON TABLE @extschema@.capacity_daily_p95 IS
    'Indicators whose daily rollups (capacity_sample_daily.p95) keep the exact p95 of each complete day: those an N-day plan condition reads by p95; '
    'maintained from capacity_plan_condition by a trigger.';

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

-- Each leaf partition's insert count (n_tup_ins) at the previous sample,
-- by OID: table_rows_inserted advances by what the leaves gained (see
-- sampler.c).  Rows of relations that no longer exist are removed.
CREATE TABLE @extschema@.capacity_leaf_inserts (
    leaf        oid PRIMARY KEY,
    inserted    double precision NOT NULL,
    observed_at timestamptz NOT NULL,
    reset       boolean NOT NULL DEFAULT false  -- its statistics were reset, no ANALYZE or VACUUM since
);

-- Last run of each indicator: ok or the error, for capacity_indicator_status.
CREATE TABLE @extschema@.capacity_indicator_run (
    indicator     text PRIMARY KEY,
    last_run      timestamptz NOT NULL,
    last_ok       timestamptz,
    samples       integer NOT NULL DEFAULT 0,
    last_error    text,
    last_error_at timestamptz,
    note          text          -- why the last run wrote nothing, or what it skipped (measures.c)
);

-- Per-role pool size overrides for pool_utilization.
CREATE TABLE @extschema@.capacity_pool_size (
    role_name  regrole PRIMARY KEY,
    pool_size  integer NOT NULL CHECK (pool_size > 0)
);

INSERT INTO @extschema@.capacity_indicator (name, unit, source, description) VALUES
 ('table_rows',                 'rows',    'builtin', 'Live rows of each partitioned table (statistics), labels {table}'),
 ('table_rows_inserted',        'rows',    'builtin', 'Rows the application inserted into each partitioned table (cumulative counter), labels {table}'),
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
GRANT SELECT ON @extschema@.capacity_latest TO pg_monitor;

CREATE VIEW @extschema@.capacity_indicator_status AS
SELECT i.name AS indicator, i.source, i.unit, i.enabled, i.owner,
       r.last_run, r.last_ok, r.samples AS last_samples, r.last_error, r.last_error_at,
       (SELECT pg_catalog.max(l.sampled_at) FROM @extschema@.capacity_latest_sample l
         WHERE l.indicator = i.name) AS last_sampled_at,
       (SELECT pg_catalog.count(*) FROM @extschema@.capacity_latest_sample l
         WHERE l.indicator = i.name) AS series,
       r.note
  FROM @extschema@.capacity_indicator i
  LEFT JOIN @extschema@.capacity_indicator_run r ON r.indicator = i.name;
GRANT SELECT ON @extschema@.capacity_indicator_status TO pg_monitor;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_sample_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_sample_daily', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_pool_size', '');
-- capacity_latest_sample is registered in 80_dump.sql.
