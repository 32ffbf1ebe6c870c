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
    'Register or update the partition policy of a table declared PARTITION BY RANGE (time_column). '
    'Another granularity on a managed table applies to the periods not yet made: the first starts where the last existing one ends. '
    'Error 55000 when the hash column changes once periods exist; 22023 for a retention that is not from one period to 1000 years with every part positive.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean) FROM PUBLIC;

CREATE FUNCTION @extschema@.capacity_rollover(
    tbl regclass DEFAULT NULL,
    as_of timestamptz DEFAULT now(),
    dry_run boolean DEFAULT false)
RETURNS TABLE(table_name regclass, action text, partition_name text, detail text)
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_rollover';
COMMENT ON FUNCTION @extschema@.capacity_rollover IS
    'Create partitions ahead, move rows out of the default partition, apply retention; one row per action.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_rollover(regclass, timestamptz, boolean) FROM PUBLIC;

CREATE PROCEDURE @extschema@.capacity_rollover_proc(
    tbl regclass DEFAULT NULL,
    as_of timestamptz DEFAULT now(),
    dry_run boolean DEFAULT false)
LANGUAGE c
AS 'MODULE_PATHNAME', 'capacity_rollover_proc';
COMMENT ON PROCEDURE @extschema@.capacity_rollover_proc IS
    'capacity_rollover() committing after each period; actions are NOTICEs and rows of capacity_rollover_log.';
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_rollover_proc(regclass, timestamptz, boolean) FROM PUBLIC;

CREATE FUNCTION @extschema@.capacity_set_hash_partitions(
    tbl regclass,
    hash_partitions integer,
    as_of timestamptz DEFAULT now())
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_set_hash_partitions';
COMMENT ON FUNCTION @extschema@.capacity_set_hash_partitions IS
    'Partition-split runbook: new and empty future periods get this many hash partitions; data is never rewritten. '
    'One call re-makes periods for about matter_capacity.lock_timeout and within the lock budget (half the shared lock table), '
    'then logs the rest as deferred: call again until no period is deferred. Error 54000 when one period alone passes the budget.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_set_hash_partitions(regclass, integer, timestamptz) FROM PUBLIC;

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

CREATE FUNCTION @extschema@.capacity_derived_name(base text, suffix text)
RETURNS text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_derived_name';
COMMENT ON FUNCTION @extschema@.capacity_derived_name IS
    'base_suffix, shortened as partition names are (at most 62 bytes, whole characters, a hash of base): names the conversion derives.';

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

-- capacity_manage()'s checks of a policy, for the conversion, which
-- partitions a table before it is managed (src/manage.c; one validator).
CREATE FUNCTION @extschema@.capacity_check_policy(tbl regclass, time_column name, granularity text,
                                                  hash_column name, hash_partitions integer, premake integer,
                                                  retention interval, retention_action text)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT STABLE
AS 'MODULE_PATHNAME', 'capacity_check_policy';
COMMENT ON FUNCTION @extschema@.capacity_check_policy IS
    'Raises what capacity_manage would refuse in these policy arguments for tbl (granularity, hash column and count, premake and leaf limit, retention, retention_action); changes nothing.';

-- The statements that build one period of a range-partitioned table as the
-- rollover builds it (src/partitions.c; one builder): the standalone
-- table with its bounds CHECK, then its hash leaves.  Runs nothing.
CREATE FUNCTION @extschema@.capacity_period_ddl(tbl regclass, time_column name, granularity text,
                                                period_start timestamptz, hash_column name,
                                                hash_partitions integer)
RETURNS text[]
LANGUAGE c CALLED ON NULL INPUT STABLE
AS 'MODULE_PATHNAME', 'capacity_period_ddl';
COMMENT ON FUNCTION @extschema@.capacity_period_ddl IS
    'CREATE statements for the standalone table of the period of tbl containing period_start (and its hash leaves), named and shaped as the rollover makes them; to be attached by the caller.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_period_ddl(regclass, name, text, timestamptz, name, integer) FROM PUBLIC;

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
GRANT SELECT ON @extschema@.capacity_policies TO pg_monitor;

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
GRANT SELECT ON @extschema@.capacity_partitions TO pg_monitor;

CREATE VIEW @extschema@.capacity_rollover_log AS
SELECT h.id, h.logged_at, h.as_of, h.table_name, h.action, h.partition_name,
       h.detail, h.duration_ms
  FROM @extschema@.capacity_rollover_history h;
GRANT SELECT ON @extschema@.capacity_rollover_log TO pg_monitor;
