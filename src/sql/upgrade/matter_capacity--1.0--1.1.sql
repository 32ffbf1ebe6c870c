-- matter_capacity upgrade script, 1.0 -> 1.1 (ALTER EXTENSION matter_capacity UPDATE).
-- One section per change, each mirroring what it changed in the install
-- pieces in src/sql/.  A function several changes rewrote stands once, with
-- its final text (as in src/sql), where the upgrade first defines it; a
-- later section that changed it names it in a comment.  When a change
-- rewrites a function already here, replace its text in place.
-- test/integration/upgrade.sh compares the result with a fresh 1.1 install:
-- objects, grants, comments, shipped rows, config-dump tables.

\echo Use "ALTER EXTENSION matter_capacity UPDATE" to load this file. \quit

-- The rest of this script runs with search_path pinned to pg_catalog (the
-- extension's own objects are named with @extschema@). PostgreSQL runs it
-- as a superuser with the extension's schema on the path, where a role
-- with CREATE there could plant an operator or function whose argument
-- types match a statement, a view or a default of this script more
-- exactly than pg_catalog's, and have it bound or run as that superuser
-- (review 4, F7 and F8). SET LOCAL: PostgreSQL restores the path when the
-- script ends (a plain SET would outlive it in the caller's session).
SET LOCAL search_path = pg_catalog, pg_temp;

-- ======== the suite on any day: conversion switch under load, autovacuum yield ========
-- Conversion under a busy machine (issue 13): an autovacuum worker holding
-- the table outlasted every lock attempt of the conversion, and a switch
-- that could not get its locks ended the backfill with an error.
-- Mirrors src/sql/60_convert.sql.

CREATE OR REPLACE FUNCTION @extschema@.capacity_autovacuum_yield(rels regclass[], what text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    av record;
    seen boolean := false;
    may_cancel boolean := true;
    cancelled integer := 0;
    deadline timestamptz := clock_timestamp() + interval '60 seconds';
BEGIN
    LOOP
        SELECT a.pid, a.query, string_agg(DISTINCT l.relation::regclass::text, ', ') AS held INTO av
          FROM pg_stat_activity a
          JOIN pg_locks l ON l.pid = a.pid AND l.granted AND l.locktype = 'relation'
         WHERE a.backend_type = 'autovacuum worker' AND a.datname = current_database()
           AND l.relation IN (SELECT r FROM unnest(rels) r
                              UNION ALL SELECT t.relid FROM unnest(rels) r, pg_partition_tree(r) t)
         GROUP BY a.pid, a.query
         LIMIT 1;
        EXIT WHEN av.pid IS NULL;
        IF NOT seen THEN
            RAISE NOTICE 'matter_capacity: %: autovacuum worker % (%) holds %', what, av.pid,
                         coalesce(av.query, '?'), av.held;
        END IF;
        seen := true;
        IF may_cancel AND av.query LIKE 'autovacuum: %' AND av.query NOT LIKE '%to prevent wraparound%' THEN
            BEGIN
                IF pg_cancel_backend(av.pid) THEN
                    cancelled := cancelled + 1;
                    IF cancelled = 1 THEN
                        RAISE NOTICE 'matter_capacity: %: cancelled that autovacuum (it runs again later)', what;
                    END IF;
                END IF;
            EXCEPTION WHEN insufficient_privilege THEN
                may_cancel := false;
                RAISE NOTICE 'matter_capacity: %: waiting for that autovacuum to end', what;
            END;
        END IF;
        IF clock_timestamp() > deadline THEN
            RETURN false;
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
    IF cancelled > 1 THEN
        -- a cancelled worker goes on to its next table, maybe another of ours
        RAISE NOTICE 'matter_capacity: %: % autovacuum tasks cancelled in all', what, cancelled;
    END IF;
    RETURN seen;
END
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_autovacuum_yield(regclass[], text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.capacity_run_bounded(stmts text[], what text, yield_to regclass[])
RETURNS integer
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_run_bounded';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_run_bounded(text[], text, regclass[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.capacity_run_bounded(stmts text[], what text)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.capacity_run_bounded(stmts, what, NULL::regclass[]) $$;


-- ======== errors stay with their table; generated names that fit ========
-- Issue 13 (errors and names), 1.0 -> 1.1.  Mirrors src/sql/10_partitions.sql
-- (capacity_derived_name) and src/sql/60_convert.sql (the conversion derives
-- its names with it: at most 62 bytes, whole characters, never colliding).

CREATE OR REPLACE FUNCTION @extschema@.capacity_derived_name(base text, suffix text)
RETURNS text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_derived_name';
COMMENT ON FUNCTION @extschema@.capacity_derived_name IS
    'base_suffix, shortened as partition names are (at most 62 bytes, whole characters, a hash of base): names the conversion derives.';


-- ======== growth the application wrote; standby refusals; conversion in a transaction block ========
-- Issue 13, sections 4 and 5 (branch wip/C): growth that means growth,
-- forecasts of the net change, refusals on a standby and in a transaction
-- block, the newest values kept by pg_dump.  Each object below is
-- replaced whole, as src/sql/ defines it.

-- Mutating functions refuse on a standby (31_indicator_functions.sql,
-- 42_stage_actions.sql, 50_explain.sql).
CREATE OR REPLACE FUNCTION @extschema@.capacity_refuse_in_recovery(what text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'matter_capacity: cannot % while the server is in recovery', what
            USING ERRCODE = '25006',
                  HINT = 'Run it on the primary; views, capacity_stage() and capacity_forecast() work on a standby.';
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION @extschema@.capacity_register_push(indicator text, unit text DEFAULT NULL,
                                                   description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    existing text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('register a pushed indicator');
    PERFORM @extschema@.capacity_check_indicator_name(indicator);
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
CREATE OR REPLACE FUNCTION @extschema@.capacity_set_pool_size(role_name regrole, pool_size integer)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('set a pool size');
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
CREATE OR REPLACE FUNCTION @extschema@.capacity_set_stage(stage integer, note text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('set the stage');
    IF stage IS NULL OR stage NOT BETWEEN 1 AND 6 THEN
        RAISE EXCEPTION 'matter_capacity: stage % is not on the ladder', coalesce(stage::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Stages are 1 to 6; see SELECT * FROM capacity_stages.';
    END IF;
    INSERT INTO @extschema@.capacity_stage_history (stage, note, set_at, set_by)
    VALUES (stage, note, now(), session_user);
END
$$;
CREATE OR REPLACE FUNCTION @extschema@.capacity_declare(flag text, note text, active boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    known text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('declare a flag');
    IF flag IS NULL OR NOT (EXISTS (SELECT 1 FROM @extschema@.capacity_trigger t WHERE t.declared_flag = flag)
                            OR EXISTS (SELECT 1 FROM @extschema@.capacity_plan_condition c WHERE c.declared_flag = flag)) THEN
        SELECT string_agg(DISTINCT f.flag, ', ' ORDER BY f.flag) INTO known
          FROM (SELECT t.declared_flag FROM @extschema@.capacity_trigger t
                UNION ALL
                SELECT c.declared_flag FROM @extschema@.capacity_plan_condition c) f(flag)
         WHERE f.flag IS NOT NULL;
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
CREATE OR REPLACE FUNCTION @extschema@.capacity_set_threshold(setting text, value double precision)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    known text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('set a threshold');
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
CREATE OR REPLACE FUNCTION @extschema@.capacity_bind_table(logical_name text, tbl regclass)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('bind a table');
    IF NOT EXISTS (SELECT 1 FROM @extschema@.capacity_table_binding b WHERE b.logical_name = capacity_bind_table.logical_name) THEN
        RAISE EXCEPTION 'matter_capacity: "%" is not a logical hot table', logical_name
            USING ERRCODE = '42704', HINT = 'The plan knows Event and AuditEntry.';
    END IF;
    UPDATE @extschema@.capacity_table_binding b SET table_name = tbl
     WHERE b.logical_name = capacity_bind_table.logical_name;
END
$$;
CREATE OR REPLACE FUNCTION @extschema@.capacity_decide_at(decision text, note text, as_of timestamptz, bindings jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    br jsonb;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('record a decision');
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
CREATE OR REPLACE FUNCTION @extschema@.capacity_explain_run(as_of timestamptz DEFAULT now())
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
    PERFORM @extschema@.capacity_refuse_in_recovery('run EXPLAIN checks');
    PERFORM @extschema@.capacity_check_time('capacity_explain_run'::text, as_of);
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
        PERFORM @extschema@.capacity_write_sample('explain_failures'::text, '{}'::jsonb, as_of, failures::float8);
    END IF;
END
$$;

-- The newest value of each series is dumped (30_indicators.sql).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_latest_sample', '');

-- The conversion procedures refuse where they cannot commit (60_convert.sql).
CREATE OR REPLACE PROCEDURE @extschema@.capacity_require_commit(what text)
LANGUAGE c
AS 'MODULE_PATHNAME', 'capacity_require_commit';
COMMENT ON PROCEDURE @extschema@.capacity_convert IS
    'Turn an ordinary table into a managed partitioned table of the same name online; the old rows stay in a historical partition until capacity_convert_backfill.';
COMMENT ON PROCEDURE @extschema@.capacity_convert_backfill IS
    'Move the historical partition left by capacity_convert into period partitions, a batch per transaction; resumable; progress in capacity_conversions.';

-- table_rows_inserted: rows the application wrote, as a counter that only
-- grows (sampler.c, 30_indicators.sql, 31_indicator_functions.sql,
-- 60_convert.sql).  Each leaf's insert count at the previous sample:
CREATE TABLE @extschema@.capacity_leaf_inserts (
    leaf        oid PRIMARY KEY,
    inserted    double precision NOT NULL,
    observed_at timestamptz NOT NULL,
    reset       boolean NOT NULL DEFAULT false  -- its statistics were reset, no ANALYZE or VACUUM since
);
CREATE OR REPLACE FUNCTION @extschema@.capacity_note_backfill_copies(tbl regclass)
RETURNS double precision
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stg regclass;
    deflt oid;
    n double precision;
    d bigint := 0;
BEGIN
    SELECT c.staging INTO stg FROM @extschema@.capacity_conversion c
     WHERE c.table_name = tbl AND c.state = 'backfilling';
    IF stg IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: % is not being backfilled', coalesce(tbl::text, 'NULL')
            USING ERRCODE = '55000', HINT = 'capacity_convert_backfill() calls this at its switch; nothing else needs to.';
    END IF;
    -- only the switch, which holds the table exclusively, records it
    IF NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND l.relation = tbl AND l.pid = pg_backend_pid() AND l.mode = 'AccessExclusiveLock' AND l.granted) THEN
        RAISE EXCEPTION 'matter_capacity: the backfill copies of % are recorded only at its switch', tbl
            USING ERRCODE = '55000', HINT = 'capacity_convert_backfill() calls this at its switch; nothing else needs to.';
    END IF;
    SELECT p.partdefid INTO deflt FROM pg_partitioned_table p WHERE p.partrelid = stg;
    SELECT coalesce(sum(greatest(pg_stat_get_tuples_inserted(t.relid) + pg_stat_get_xact_tuples_inserted(t.relid)
                                 - coalesce(s.inserted, 0), 0)), 0)
      INTO n
      FROM pg_partition_tree(stg) t JOIN pg_class c ON c.oid = t.relid AND c.relkind = 'r'
      LEFT JOIN @extschema@.capacity_leaf_inserts s ON s.leaf = t.relid
     WHERE t.relid IS DISTINCT FROM deflt;
    IF deflt IS NOT NULL AND deflt <> 0 THEN
        EXECUTE format('SELECT count(*) FROM ONLY %s', deflt::regclass) INTO d;
    END IF;
    n := n + d;
    SELECT n - coalesce(greatest(pg_stat_get_tuples_inserted(c.historical) + pg_stat_get_xact_tuples_inserted(c.historical)
                                 - s.inserted, 0), 0)
      INTO n
      FROM @extschema@.capacity_conversion c
      LEFT JOIN @extschema@.capacity_leaf_inserts s ON s.leaf = c.historical
     WHERE c.table_name = tbl;
    IF n <> 0 THEN
        INSERT INTO @extschema@.capacity_counter AS e (name, labels, value, observed_at)
        VALUES ('engine_rows_inserted', jsonb_build_object('relid', tbl::oid::bigint), n, now())
        ON CONFLICT ON CONSTRAINT capacity_counter_pkey DO UPDATE
           SET value = e.value + EXCLUDED.value, observed_at = EXCLUDED.observed_at;
    END IF;
    RETURN n;
END
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_note_backfill_copies(regclass) FROM PUBLIC;
ALTER TABLE @extschema@.capacity_indicator DISABLE TRIGGER capacity_shipped_row_edited;
UPDATE @extschema@.capacity_indicator
   SET description = 'Rows the application inserted into each partitioned table (cumulative counter), labels {table}'
 WHERE name = 'table_rows_inserted' AND shipped;
ALTER TABLE @extschema@.capacity_indicator ENABLE TRIGGER capacity_shipped_row_edited;

-- The history a 1.0 sampler wrote summed the insert counts of the leaves
-- of the moment, so it fell whenever retention dropped or detached a
-- partition (or statistics were reset).  Each fall is taken out of the
-- series from there on (that interval counts no growth), in the raw
-- samples, the hourly and daily rollups (by their last values) and the
-- newest values; the sampler then goes on from the newest value.
UPDATE @extschema@.capacity_sample s SET value = s.value + r.fall
  FROM (SELECT x.labels, x.sampled_at,
               sum(greatest(coalesce(x.prev - x.value, 0), 0)) OVER (PARTITION BY x.labels ORDER BY x.sampled_at) AS fall
          FROM (SELECT labels, sampled_at, value, lag(value) OVER (PARTITION BY labels ORDER BY sampled_at) AS prev
                  FROM @extschema@.capacity_sample WHERE indicator = 'table_rows_inserted' AND value IS NOT NULL) x) r
 WHERE s.indicator = 'table_rows_inserted' AND s.labels = r.labels AND s.sampled_at = r.sampled_at AND r.fall > 0;
UPDATE @extschema@.capacity_sample_hourly h
   SET min = h.min + r.fall, max = h.max + r.fall, avg = h.avg + r.fall, last = h.last + r.fall
  FROM (SELECT x.labels, x.hour,
               sum(greatest(coalesce(x.prev - x.last, 0), 0)) OVER (PARTITION BY x.labels ORDER BY x.hour) AS fall
          FROM (SELECT labels, hour, last, lag(last) OVER (PARTITION BY labels ORDER BY hour) AS prev
                  FROM @extschema@.capacity_sample_hourly WHERE indicator = 'table_rows_inserted') x) r
 WHERE h.indicator = 'table_rows_inserted' AND h.labels = r.labels AND h.hour = r.hour AND r.fall > 0;
UPDATE @extschema@.capacity_sample_daily d
   SET min = d.min + r.fall, max = d.max + r.fall, avg = d.avg + r.fall, last = d.last + r.fall,
       peak_hour_min = d.peak_hour_min + r.fall, trough_hour_max = d.trough_hour_max + r.fall,
       peak_hour_avg = d.peak_hour_avg + r.fall, trough_hour_avg = d.trough_hour_avg + r.fall
  FROM (SELECT x.labels, x.day,
               sum(greatest(coalesce(x.prev - x.last, 0), 0)) OVER (PARTITION BY x.labels ORDER BY x.day) AS fall
          FROM (SELECT labels, day, last, lag(last) OVER (PARTITION BY labels ORDER BY day) AS prev
                  FROM @extschema@.capacity_sample_daily WHERE indicator = 'table_rows_inserted') x) r
 WHERE d.indicator = 'table_rows_inserted' AND d.labels = r.labels AND d.day = r.day AND r.fall > 0;
UPDATE @extschema@.capacity_latest_sample l SET value = s.value
  FROM (SELECT DISTINCT ON (labels) labels, sampled_at, value FROM @extschema@.capacity_sample
         WHERE indicator = 'table_rows_inserted' ORDER BY labels, sampled_at DESC) s
 WHERE l.indicator = 'table_rows_inserted' AND l.labels = s.labels AND l.sampled_at = s.sampled_at;

-- Forecasts of row counts follow the net change (44_forecast.sql).
CREATE OR REPLACE FUNCTION @extschema@.capacity_forecast_eval(as_of timestamptz, horizon interval, bindings jsonb,
                                                   evals @extschema@.capacity_trigger_row[],
                                                   min_stage integer DEFAULT NULL)
RETURNS SETOF @extschema@.capacity_forecast_row
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM @extschema@.capacity_plan_forecast_eval(as_of, horizon, bindings, evals, min_stage, NULL::text) $$;

-- ======== security: user code as its owner, bounded, settings undone ========
-- Issue 19 (security): see docs/security.md.  Each object below is
-- re-created exactly as the install pieces define it; when another change
-- edits one of them in src/sql, this piece (concatenated after lower-numbered
-- ones) must carry the merged definition:
--   60_convert.sql: capacity_run_as_owner
--   60_convert.sql: capacity_convert_sync
--   60_convert.sql: capacity_convert_backfill
--   70_drop_cleanup.sql (20_drop_cleanup.sql until issue 17): capacity_forget_dropped_tables
--   50_explain.sql: capacity_explain_register_defaults
--   60_convert.sql: capacity_convert_check
--   31_indicator_functions.sql: capacity_record

CREATE OR REPLACE FUNCTION @extschema@.capacity_run_as_owner(tbl regclass, stmts text[])
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_run_as_owner';

CREATE OR REPLACE FUNCTION @extschema@.capacity_convert_sync()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'capacity_convert_sync';

CREATE OR REPLACE FUNCTION @extschema@.capacity_forget_dropped_tables()
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
    -- the default EXPLAIN checks (42_explain.sql) of dropped tables
    DELETE FROM @extschema@.capacity_explain_check k
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND k.table_name::pg_catalog.oid = d.objid;
    UPDATE @extschema@.capacity_conversion c SET historical = NULL
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND c.historical::pg_catalog.oid = d.objid;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.capacity_explain_register_defaults(tbl regclass, owner regrole)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p @extschema@.capacity_policy;
    t text := tbl::text;
    tenant text;
    leaves integer;
    chk record;
BEGIN
    SELECT * INTO p FROM @extschema@.capacity_policy c WHERE c.table_name = tbl;
    leaves := coalesce(p.hash_partitions, 1);
    DELETE FROM @extschema@.capacity_explain_check c
     WHERE c.table_name = tbl
        OR (c.table_name IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_class r WHERE r.oid = c.table_name));
    IF p.hash_column IS NOT NULL THEN
        SELECT CASE WHEN typ.typcategory = 'N' THEN '1'
                    WHEN typ.oid = 'uuid'::regtype THEN '00000000-0000-0000-0000-000000000000'
                    ELSE 'tenant' END
          INTO tenant
          FROM pg_attribute a JOIN pg_type typ ON typ.oid = a.atttypid
         WHERE a.attrelid = tbl AND a.attname = p.hash_column;
    END IF;
    FOR chk IN
        SELECT t || ': one ' || p.granularity AS name,
               format('SELECT * FROM %s WHERE %I >= $1 AND %I < $2', t, p.time_column, p.time_column) AS query,
               leaves AS max_partitions, ARRAY['@period_start@', '@period_end@'] AS params
        UNION ALL
        SELECT t || ': tenant + one ' || p.granularity,
               format('SELECT * FROM %s WHERE %I = $1 AND %I >= $2 AND %I < $3', t, p.hash_column, p.time_column, p.time_column),
               1, ARRAY[tenant, '@period_start@', '@period_end@']
         WHERE p.hash_column IS NOT NULL
        UNION ALL
        SELECT t || ': tenant + one ' || p.granularity || ' across a boundary',
               format('SELECT * FROM %s WHERE %I = $1 AND %I >= $2 AND %I < $3', t, p.hash_column, p.time_column, p.time_column),
               2, ARRAY[tenant, '@mid_period@', '@mid_next_period@']
         WHERE p.hash_column IS NOT NULL
    LOOP
        INSERT INTO @extschema@.capacity_explain_check (name, query, max_partitions, params, owner, search_path, table_name)
        VALUES (chk.name, chk.query, chk.max_partitions, chk.params, owner, NULL, tbl)
        ON CONFLICT (name) DO NOTHING;
        IF NOT FOUND THEN
            INSERT INTO @extschema@.capacity_explain_check (name, query, max_partitions, params, owner, search_path, table_name)
            VALUES (chk.name || ' (' || tbl::oid || ')', chk.query, chk.max_partitions, chk.params, owner, NULL, tbl)
            ON CONFLICT (name) DO UPDATE
               SET query = EXCLUDED.query, max_partitions = EXCLUDED.max_partitions, params = EXCLUDED.params,
                   owner = EXCLUDED.owner, search_path = NULL, table_name = EXCLUDED.table_name;
        END IF;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.capacity_convert_check(tbl regclass, time_column name, granularity text,
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
    IF (premake + 1)::bigint * coalesce(hash_partitions, 1)
       > coalesce(nullif(current_setting('matter_capacity.max_leaves_per_policy', true), '')::integer, 10000) THEN
        RAISE EXCEPTION 'matter_capacity: premake % with % hash partitions for % makes % leaf tables, more than matter_capacity.max_leaves_per_policy',
                        premake, coalesce(hash_partitions, 1), qual, (premake + 1)::bigint * coalesce(hash_partitions, 1)
            USING ERRCODE = '54000',
                  HINT = 'Use fewer periods ahead or fewer hash partitions; a superuser can raise matter_capacity.max_leaves_per_policy.';
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

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_run_as_owner(regclass, text[]) FROM PUBLIC;

GRANT SELECT ON @extschema@.capacity_table_binding TO pg_monitor;

-- ======== plans as data and their presets ========
-- Plans (issue 14): the pieces of 40_stages.sql, 41_stage_functions.sql,
-- 42_stage_actions.sql, 45_plans.sql, 46_plan_presets.sql, 80_dump.sql and
-- the grants (each piece's own since issue 17) that 1.1 adds or changes.  capacity_stage,
-- capacity_decide and capacity_decide_at change signature (a plan
-- argument, evidence references): they are dropped with the view that
-- depends on capacity_stage and made again.

-- the decision record gains its plan, tier and evidence references (at the end)
-- (evidence_refs is filled before it gets its default and NOT NULL, so the
-- column carries no "missing value" a fresh install's does not)
ALTER TABLE @extschema@.capacity_decision
    ADD COLUMN plan text,
    ADD COLUMN current_tier text,
    ADD COLUMN evidence_refs text[];
UPDATE @extschema@.capacity_decision SET evidence_refs = '{}';
ALTER TABLE @extschema@.capacity_decision
    ALTER COLUMN evidence_refs SET DEFAULT '{}',
    ALTER COLUMN evidence_refs SET NOT NULL;

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

-- One UTC day of one series: its aggregates (conditions over N days).
CREATE TYPE @extschema@.capacity_day_point AS (
    indicator text, labels jsonb, day timestamptz, avg double precision,
    max double precision, min double precision, p95 double precision, n bigint);

-- Each trigger with its effective threshold (times its SLO setting) and
-- the label filter its series must match: a bound hot table adds
-- {"table": name}.  Shared by the evaluation and the forecast.  plan_name
-- NULL: the six-stage ladder's capacity_trigger; a plan's name: that
-- plan's conditions (stage is their step's ordinal; days and daily are
-- set for N-consecutive-UTC-day conditions, whose sustain is N days).
CREATE OR REPLACE FUNCTION @extschema@.capacity_trigger_resolved(bindings jsonb, plan_name text)
RETURNS TABLE(name text, stage integer, indicator text, label_filter jsonb, aggregate text,
              ratio_filter jsonb, per_period interval, comparator text, sustain interval,
              declared_flag text, description text, eff_threshold double precision,
              thr_default boolean, filter jsonb, unbound boolean, days integer, daily text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT t.name, t.stage, t.indicator, t.label_filter, t.aggregate, t.ratio_filter,
           t.per_period, t.comparator, t.sustain, t.declared_flag, t.description,
           t.threshold * coalesce(s.value, 1),
           (t.threshold_setting IS NOT NULL AND s.value = s.default_value),
           CASE WHEN t.bind_table IS NULL THEN t.label_filter
                ELSE t.label_filter || jsonb_build_object('table',
                       ((bindings ->> t.bind_table)::oid)::regclass::text) END,
           (t.bind_table IS NOT NULL AND bindings ->> t.bind_table IS NULL),
           t.days, t.daily
      FROM (SELECT c.name, c.stage, c.indicator, c.label_filter, c.bind_table, c.aggregate,
                   c.ratio_filter, c.per_period, c.comparator, c.threshold, c.threshold_setting,
                   c.sustain, c.declared_flag, c.description, NULL::integer AS days, NULL::text AS daily
              FROM @extschema@.capacity_trigger c
             WHERE capacity_trigger_resolved.plan_name IS NULL
            UNION ALL
            SELECT c.name, st.ordinal, c.indicator, c.label_filter, c.bind_table, c.aggregate,
                   c.ratio_filter, c.per_period, c.comparator, c.threshold, c.threshold_setting,
                   CASE WHEN c.aggregate = 'days' THEN c.days * interval '1 day' ELSE c.sustain END,
                   c.declared_flag, c.description, c.days, coalesce(c.daily, 'avg')
              FROM @extschema@.capacity_plan_condition c
              JOIN @extschema@.capacity_plan_step st ON st.plan = c.plan AND st.name = c.step
             WHERE c.plan = capacity_trigger_resolved.plan_name) t
      LEFT JOIN @extschema@.capacity_setting s ON s.name = t.threshold_setting;
END
$$;

-- The six-stage ladder's triggers (as in 1.0).
CREATE OR REPLACE FUNCTION @extschema@.capacity_trigger_resolved(bindings jsonb)
RETURNS TABLE(name text, stage integer, indicator text, label_filter jsonb, aggregate text,
              ratio_filter jsonb, per_period interval, comparator text, sustain interval,
              declared_flag text, description text, eff_threshold double precision,
              thr_default boolean, filter jsonb, unbound boolean)
LANGUAGE sql STABLE
AS $$
    SELECT r.name, r.stage, r.indicator, r.label_filter, r.aggregate, r.ratio_filter, r.per_period,
           r.comparator, r.sustain, r.declared_flag, r.description, r.eff_threshold, r.thr_default,
           r.filter, r.unbound
      FROM @extschema@.capacity_trigger_resolved(bindings, NULL::text) r
$$;

-- One row per trigger and series: its value, threshold and status at as_of.
--
-- Samples are read first, by statements planned with their bound values
-- (EXECUTE ... USING), so capacity_sample is pruned to the one or two day
-- partitions the windows touch: one scan for every window of an hour or
-- so, and two short index probes per growth series (first and last value
-- of the counter).  The set logic then runs over those arrays with a
-- cached plan.  Conditions over N consecutive UTC days read each day's
-- aggregate of the N complete days before as_of's day (the daily rollups,
-- else the raw samples; a day's p95 always from the raw samples):
-- firing when every one of the N days breaches, ok as soon as one day is
-- under, insufficient data when days are missing and none is under.
-- plan_name: as in capacity_trigger_resolved.
CREATE OR REPLACE FUNCTION @extschema@.capacity_trigger_eval(as_of timestamptz, bindings jsonb, plan_name text)
RETURNS SETOF @extschema@.capacity_trigger_row
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_nestloop = off
SET plan_cache_mode = force_generic_plan
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
    day0 timestamptz := date_trunc('day', as_of, 'UTC');
    maxdays integer;
    dinds text[];
    pinds text[];
    pdays jsonb;              -- indicator -> the most days a p95 of it is read over
    ind text;
    missing timestamptz[];
    raw @extschema@.capacity_day_point[];
    dp @extschema@.capacity_day_point[];
BEGIN
    PERFORM @extschema@.capacity_check_time('capacity_trigger_eval'::text, as_of);
    SELECT coalesce(max(greatest(tr.sustain, interval '1 hour')), interval '1 hour'),
           array_agg(DISTINCT tr.indicator)
      INTO maxwin, inds
      FROM @extschema@.capacity_trigger_resolved(bindings, plan_name) tr
     WHERE tr.indicator IS NOT NULL AND tr.aggregate NOT IN ('growth', 'days');
    lo := as_of - maxwin;
    -- EXECUTE ... USING plans once with the values: the bounds prune
    EXECUTE 'SELECT array_agg(s) FROM @extschema@.capacity_sample s
              WHERE s.indicator = ANY ($1) AND s.sampled_at > $2 AND s.sampled_at <= $3'
       INTO w USING inds, lo, as_of;
    w := coalesce(w, '{}');

    -- each UTC day's aggregates of the series day conditions read: the
    -- daily rollups the sampler keeps (with a complete day's p95, kept for
    -- the indicators conditions read it of: capacity_roll_up_days), and the
    -- raw samples (one pruned grouped scan per indicator) for the days a
    -- series lacks a rollup of, or a p95 in it that a condition reads
    SELECT max(x.nd), array_agg(x.indicator ORDER BY x.indicator),
           coalesce(array_agg(x.indicator ORDER BY x.indicator) FILTER (WHERE x.pd IS NOT NULL), '{}'),
           jsonb_object_agg(x.indicator, x.pd)
      INTO maxdays, dinds, pinds, pdays
      FROM (SELECT tr.indicator, max(tr.days) AS nd, max(tr.days) FILTER (WHERE tr.daily = 'p95') AS pd
              FROM @extschema@.capacity_trigger_resolved(bindings, plan_name) tr
             WHERE tr.aggregate = 'days' AND NOT tr.unbound
             GROUP BY tr.indicator) x;
    dp := '{}';
    IF maxdays IS NOT NULL THEN
        lo := day0 - maxdays * interval '1 day';
        EXECUTE 'SELECT array_agg(ROW(d.indicator, d.labels, d.day, d.avg, d.max, d.min, d.p95, d.count)::@extschema@.capacity_day_point)
                   FROM @extschema@.capacity_sample_daily d
                  WHERE d.indicator = ANY ($1) AND d.day >= $2 AND d.day < $3'
           INTO dp USING dinds, lo, day0;
        dp := coalesce(dp, '{}');
        FOREACH ind IN ARRAY dinds LOOP
            -- a day is read raw when it has no rollup, or a series alive
            -- since then has none, or its p95 is read and a rollup lacks it;
            -- an indicator with no live series is not evaluated (series)
            missing := ARRAY(SELECT g FROM generate_series(lo, day0 - interval '1 day', interval '1 day') g
                              WHERE EXISTS (SELECT 1 FROM @extschema@.capacity_latest_sample l WHERE l.indicator = ind)
                                AND ((g >= day0 - (pdays ->> ind)::integer * interval '1 day'
                                      AND EXISTS (SELECT 1 FROM unnest(dp) p
                                                   WHERE p.indicator = ind AND p.day = g AND p.p95 IS NULL))
                                     OR NOT EXISTS (SELECT 1 FROM unnest(dp) p WHERE p.indicator = ind AND p.day = g)
                                     OR EXISTS (SELECT 1 FROM @extschema@.capacity_latest_sample l
                                                 WHERE l.indicator = ind AND l.sampled_at >= g
                                                   AND NOT EXISTS (SELECT 1 FROM unnest(dp) p
                                                                    WHERE p.indicator = ind AND p.labels = l.labels AND p.day = g))));
            CONTINUE WHEN cardinality(missing) = 0;
            dp := ARRAY(SELECT p FROM unnest(dp) p WHERE NOT (p.indicator = ind AND p.day = ANY (missing)));
            EXECUTE format('SELECT array_agg(ROW(d.indicator, d.labels, d.day, d.avg, d.max, d.min, d.p95, d.n)::@extschema@.capacity_day_point)
                              FROM (SELECT s.indicator, s.labels, date_trunc(''day'', s.sampled_at, ''UTC'') AS day,
                                           avg(s.value) AS avg, max(s.value) AS max, min(s.value) AS min, %s AS p95, count(*) AS n
                                      FROM @extschema@.capacity_sample s
                                     WHERE s.indicator = $1 AND s.sampled_at >= $2 AND s.sampled_at < $3
                                     GROUP BY 1, 2, 3) d
                             WHERE d.day = ANY ($4)',
                           CASE WHEN ind = ANY (pinds) THEN 'percentile_cont(0.95) WITHIN GROUP (ORDER BY s.value)'
                                ELSE 'NULL::double precision' END)
               INTO raw USING ind, missing[1], missing[cardinality(missing)] + interval '1 day', missing;
            dp := dp || coalesce(raw, '{}');
        END LOOP;
    END IF;

    FOR gt IN SELECT tr.name, tr.indicator, tr.sustain,
                    greatest(tr.sustain * 0.1, interval '2 minutes') AS tol, tr.filter
               FROM @extschema@.capacity_trigger_resolved(bindings, plan_name) tr
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
      FROM @extschema@.capacity_trigger_resolved(bindings, plan_name) t
),
series AS (   -- every series a metric trigger looks at
    SELECT t.name, l.labels
      FROM trig t JOIN @extschema@.capacity_latest_sample l
        ON l.indicator = t.indicator AND l.labels @> t.filter
     WHERE t.indicator IS NOT NULL AND NOT t.unbound
),
watched AS MATERIALIZED (   -- 'all' and 'latest': each series with its trigger and window
    SELECT t.name, t.indicator, x.labels, t.comparator, t.eff_threshold,
           as_of - CASE WHEN t.aggregate = 'latest' THEN interval '1 hour' ELSE t.sustain END AS since
      FROM trig t JOIN series x ON x.name = t.name
     WHERE t.aggregate IN ('all', 'latest')
),
breach AS (   -- the samples of the window, per series: one hash join on the series' key
    SELECT t.name, t.labels, count(*) AS n, min(s.sampled_at) AS first_at, max(s.sampled_at) AS last_at,
           (array_agg(s.value ORDER BY s.sampled_at DESC))[1] AS last_value,
           CASE WHEN t.comparator IN ('>', '>=') THEN min(s.value) ELSE max(s.value) END AS deciding,
           bool_and(@extschema@.capacity_breaches(s.value, t.comparator, t.eff_threshold)) AS all_breach,
           (array_agg(@extschema@.capacity_breaches(s.value, t.comparator, t.eff_threshold)
                      ORDER BY s.sampled_at DESC))[1] AS last_breach
      FROM watched t
      JOIN ws s ON s.indicator = t.indicator AND s.labels = t.labels
               AND s.sampled_at <= as_of AND s.sampled_at > t.since
     GROUP BY t.name, t.comparator, t.labels
),
days AS (     -- 'days': each of the N UTC days before as_of's day, per series
    SELECT t.name, x.labels, count(*) AS n, min(d.day) AS first_day,
           (array_agg(d.v ORDER BY d.day DESC))[1] AS last_value,
           CASE WHEN t.comparator IN ('>', '>=') THEN min(d.v) ELSE max(d.v) END AS deciding,
           bool_and(@extschema@.capacity_breaches(d.v, t.comparator, t.eff_threshold)) AS all_breach
      FROM trig t
      JOIN series x ON x.name = t.name
      JOIN (SELECT p.indicator, p.labels, p.day,
                   CASE tt.daily WHEN 'max' THEN p.max WHEN 'min' THEN p.min
                                 WHEN 'p95' THEN p.p95 ELSE p.avg END AS v, tt.name
              FROM unnest(dp) p JOIN trig tt ON tt.indicator = p.indicator AND tt.aggregate = 'days') d
        ON d.name = t.name AND d.labels = x.labels
       AND d.day >= day0 - t.days * interval '1 day' AND d.day < day0
     WHERE t.aggregate = 'days'
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
    SELECT dd.name, dd.labels, dd.last_value, dd.deciding, dd.n, dd.first_day,
           CASE WHEN NOT dd.all_breach THEN 'ok'          -- one day under resets the count
                WHEN dd.n < t.days THEN 'insufficient data'
                ELSE 'firing' END
      FROM days dd JOIN trig t ON t.name = dd.name
    UNION ALL
    SELECT g.name, g.labels,
           (g.last_v - g.first_v) / nullif(extract(epoch FROM g.last_at - g.first_at), 0)
               * extract(epoch FROM t.per_period),
           NULL, 2, g.first_at,
           CASE WHEN g.first_at IS NULL OR g.last_at IS NULL OR g.first_at = g.last_at
                     OR g.first_at > as_of - t.sustain + t.tol OR g.last_at < as_of - t.tol
                     OR g.last_v < g.first_v THEN 'insufficient data'
                WHEN @extschema@.capacity_breaches((g.last_v - g.first_v) / extract(epoch FROM g.last_at - g.first_at)
                                                        * extract(epoch FROM t.per_period),
                                                    t.comparator, t.eff_threshold)
                     THEN 'firing' ELSE 'ok' END
      FROM growth g JOIN trig t ON t.name = g.name
    UNION ALL
    SELECT r.name, r.labels, r.num / nullif(r.den, 0), NULL, r.n, r.first_at,
           CASE WHEN r.num IS NULL OR r.den IS NULL OR r.den = 0 OR r.first_at > as_of - t.sustain + t.tol
                     THEN 'insufficient data'
                WHEN @extschema@.capacity_breaches(r.num / r.den, t.comparator, t.eff_threshold)
                     THEN 'firing' ELSE 'ok' END
      FROM ratio r JOIN trig t ON t.name = r.name
    UNION ALL
    -- series that exist but have no sample in the window
    SELECT x.name, x.labels, NULL, NULL, 0, NULL, 'insufficient data'
      FROM series x JOIN trig t ON t.name = x.name
     WHERE (t.aggregate IN ('all', 'latest')
            AND NOT EXISTS (SELECT 1 FROM breach b WHERE b.name = x.name AND b.labels = x.labels))
        OR (t.aggregate = 'days'
            AND NOT EXISTS (SELECT 1 FROM days dd WHERE dd.name = x.name AND dd.labels = x.labels))
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

-- The six-stage ladder's triggers (as in 1.0).
CREATE OR REPLACE FUNCTION @extschema@.capacity_trigger_eval(as_of timestamptz, bindings jsonb)
RETURNS SETOF @extschema@.capacity_trigger_row
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.capacity_trigger_eval(as_of, bindings, NULL::text) $$;

-- Which plan: NULL is the active one; an unknown name is an error.
CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_resolve(plan_name text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found text;
    known text;
BEGIN
    IF plan_name IS NULL THEN
        SELECT p.name INTO found FROM @extschema@.capacity_plan p WHERE p.active ORDER BY p.name LIMIT 1;
        RETURN coalesce(found, 'matter-six-stage');
    END IF;
    SELECT p.name INTO found FROM @extschema@.capacity_plan p WHERE p.name = plan_name;
    IF found IS NULL THEN
        SELECT string_agg(p.name, ', ' ORDER BY p.name) INTO known FROM @extschema@.capacity_plan p;
        RAISE EXCEPTION 'matter_capacity: plan "%" is not installed', plan_name
            USING ERRCODE = '42704',
                  HINT = 'Installed plans: ' || coalesce(known, 'none') || '. Install a preset with capacity_plan_install(name) or load a document with capacity_plan_import(doc).';
    END IF;
    RETURN found;
END
$$;

-- capacity_stage() for any plan: the six-stage ladder's evaluation or a
-- plan's (capacity_plan_eval, 45_plans.sql).
CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_stage(as_of timestamptz, bindings jsonb, horizon interval, plan_name text)
RETURNS TABLE(current_stage integer, current_name text, recommended_stage integer,
              recommended_name text, decision text, firing text[], evidence jsonb,
              runbook text, evaluated_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text := @extschema@.capacity_plan_resolve(plan_name);
    e record;
    fc @extschema@.capacity_forecast_row[];
    contra text[];
    due record;
BEGIN
    PERFORM @extschema@.capacity_check_time('capacity_stage'::text, as_of, horizon, true);
    IF p = 'matter-six-stage' THEN
        RETURN QUERY SELECT * FROM @extschema@.capacity_stage_eval(as_of, bindings, horizon);
        RETURN;
    END IF;
    SELECT * INTO e FROM @extschema@.capacity_plan_eval(as_of, bindings, p);

    -- contradictions: flags the current tier's entry needs, not declared
    SELECT array_agg(DISTINCT format('tier %s is set but %s is not declared', c.step, c.declared_flag)
                     ORDER BY format('tier %s is set but %s is not declared', c.step, c.declared_flag))
      INTO contra
      FROM @extschema@.capacity_plan_condition c
     WHERE c.plan = p AND c.step = e.current_name AND c.rule = 'enter' AND c.declared_flag IS NOT NULL
       AND coalesce(e.evidence #>> ARRAY['conditions', c.name, 'status'], '') <> 'firing'
       AND NOT EXISTS (   -- a group of the rule whose flags are all declared
             SELECT 1 FROM @extschema@.capacity_plan_condition g
              WHERE g.plan = p AND g.step = c.step AND g.rule = 'enter'
              GROUP BY g.grp
             HAVING bool_and(g.declared_flag IS NULL
                             OR e.evidence #>> ARRAY['conditions', g.name, 'status'] = 'firing'));

    -- forecasts of the conditions of the moves ahead
    IF e.decision IN ('stay', 'review')
       AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(e.evidence -> 'steps') st
                        WHERE st ->> 'status' IN ('violated', 'evidence met, checklist incomplete')) THEN
        -- only the metric conditions of the moves ahead are fitted
        fc := ARRAY(SELECT f FROM @extschema@.capacity_plan_forecast_eval(as_of, horizon, bindings,
                        '{}'::@extschema@.capacity_trigger_row[], NULL::integer, p,
                        ARRAY(SELECT c.name FROM @extschema@.capacity_plan_condition c
                                JOIN @extschema@.capacity_plan_step s ON s.plan = c.plan AND s.name = c.step
                               WHERE c.plan = p AND c.rule = 'enter' AND c.indicator IS NOT NULL
                                 AND ((s.kind = 'tier' AND s.ordinal > e.current_stage)
                                      OR (s.kind = 'gate' AND NOT EXISTS (
                                            SELECT 1 FROM jsonb_array_elements(e.evidence -> 'steps') st
                                             WHERE st ->> 'name' = s.name AND st ->> 'status' = 'open'))))) f
                     WHERE f.status = 'forecast');
        WITH steps AS (
            SELECT s.* FROM @extschema@.capacity_plan_step s
             WHERE s.plan = p
               AND ((s.kind = 'tier' AND s.ordinal > e.current_stage)
                    OR (s.kind = 'gate' AND NOT EXISTS (
                          SELECT 1 FROM jsonb_array_elements(e.evidence -> 'steps') st
                           WHERE st ->> 'name' = s.name AND st ->> 'status' = 'open')))
        ), cond AS (
            SELECT c.step, c.grp, c.name,
                   CASE WHEN e.evidence #>> ARRAY['conditions', c.name, 'status'] = 'firing' THEN as_of
                        WHEN c.declared_flag IS NULL THEN (SELECT min(f.eta) FROM unnest(fc) f WHERE f.trigger_name = c.name)
                   END AS eta
              FROM @extschema@.capacity_plan_condition c JOIN steps s ON s.name = c.step
             WHERE c.plan = p AND c.rule = 'enter'
        ), grp AS (
            SELECT c.step, c.grp, max(c.eta) AS eta,
                   array_agg(c.name ORDER BY c.name) FILTER (WHERE c.eta > as_of) AS forecast,
                   array_agg(c.name ORDER BY c.name) AS conds
              FROM cond c GROUP BY 1, 2
            HAVING bool_and(c.eta IS NOT NULL) AND max(c.eta) > as_of
        )
        SELECT g.step, g.eta, g.conds, s.kind, s.ordinal, s.runbook INTO due
          FROM grp g JOIN steps s ON s.name = g.step
         ORDER BY g.eta, s.kind <> 'tier', s.ordinal DESC, g.grp LIMIT 1;
        IF due.step IS NOT NULL THEN
            e.decision := 'plan';
            IF due.kind = 'tier' THEN
                e.recommended_stage := due.ordinal;
                e.recommended_name := due.step;
            END IF;
            e.runbook := coalesce(due.runbook, e.runbook);
            e.firing := due.conds;
        END IF;
        e.evidence := e.evidence || jsonb_build_object(
            'forecasts', (SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                                'condition', f.trigger_name, 'stage', f.stage, 'labels', f.labels,
                                'eta', f.eta, 'days_left', f.days_left,
                                'eta_earliest', f.eta_earliest, 'eta_latest', f.eta_latest,
                                'method', f.method, 'value', f.current_value,
                                'threshold', f.threshold)) ORDER BY f.eta, f.trigger_name), '[]')
                            FROM unnest(fc) f),
            'plan', CASE WHEN due.step IS NOT NULL THEN jsonb_build_object('step', due.step, 'by', due.eta) END,
            'horizon_end', as_of + horizon);
    END IF;
    e.evidence := e.evidence || jsonb_build_object('contradictions', to_jsonb(coalesce(contra, '{}'::text[])));
    IF contra IS NOT NULL AND e.decision = 'stay' THEN
        e.decision := 'review';
    END IF;
    RETURN QUERY SELECT e.current_stage, e.current_name, e.recommended_stage, e.recommended_name, e.decision,
                        e.firing, e.evidence, e.runbook, e.evaluated_at;
END
$$;

DROP VIEW @extschema@.capacity_stages;
DROP FUNCTION @extschema@.capacity_stage(timestamptz, interval);
CREATE OR REPLACE FUNCTION @extschema@.capacity_stage(as_of timestamptz DEFAULT now(),
                                           horizon interval DEFAULT '6 months',
                                           plan text DEFAULT NULL)
RETURNS TABLE(current_stage integer, current_name text, recommended_stage integer,
              recommended_name text, decision text, firing text[], evidence jsonb,
              runbook text, evaluated_at timestamptz)
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.capacity_plan_stage(as_of, @extschema@.capacity_bindings(), horizon, plan) $$;
COMMENT ON FUNCTION @extschema@.capacity_stage IS
    'Where the database stands on a plan (plan: an installed plan''s name; NULL: the active one, matter-six-stage after install): '
    'whether a trigger says to move (promote), move back (rollback, plans with exit rules) or will within the horizon (plan, six-stage ladder only), and the evidence. '
    'Error 42704 for a plan that is not installed.';


DROP FUNCTION @extschema@.capacity_decide(text, text, timestamptz);
DROP FUNCTION @extschema@.capacity_decide_at(text, text, timestamptz, jsonb);
-- The weekly review: record the decision with the evidence of this moment,
-- for the six-stage ladder or a plan (plan_name resolved by the caller),
-- with the caller's references to the gate artifacts it rests on.
CREATE OR REPLACE FUNCTION @extschema@.capacity_decide_at(decision text, note text, as_of timestamptz, bindings jsonb,
                                               plan_name text, evidence_refs text[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    br jsonb;
    p text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('record a decision');
    IF decision IS NULL OR decision NOT IN ('stay', 'promote', 'rollback') THEN
        RAISE EXCEPTION 'matter_capacity: decision "%" is not one of stay, promote, rollback', coalesce(decision, 'NULL')
            USING ERRCODE = '22023', HINT = 'Record stay, promote or rollback; set the new stage with capacity_set_stage().';
    END IF;
    PERFORM @extschema@.capacity_check_time('capacity_decide'::text, as_of);
    IF evidence_refs IS NOT NULL AND (array_position(evidence_refs, NULL) IS NOT NULL
                                      OR EXISTS (SELECT 1 FROM unnest(evidence_refs) r WHERE btrim(r) = '')) THEN
        RAISE EXCEPTION 'matter_capacity: evidence_refs of the decision must not hold NULL or empty references'
            USING ERRCODE = '22004', HINT = 'Pass the paths or run ids of the gate artifacts, e.g. ARRAY[''ci/run/4711/plan-check.tap''].';
    END IF;
    p := @extschema@.capacity_plan_resolve(plan_name);
    SELECT * INTO s FROM @extschema@.capacity_plan_stage(as_of, bindings, interval '6 months', p);
    SELECT coalesce(jsonb_agg(jsonb_build_object('trigger', e.trigger_name, 'stage', e.stage,
                        'labels', e.labels, 'value', e.value, 'threshold', e.threshold,
                        'since', e.window_start) ORDER BY e.stage, e.trigger_name), '[]')
      INTO br
      FROM @extschema@.capacity_trigger_eval(as_of, bindings, CASE WHEN p = 'matter-six-stage' THEN NULL ELSE p END) e
     WHERE e.status = 'firing';
    INSERT INTO @extschema@.capacity_decision
        (decided_at, decision, note, current_stage, recommended_stage, evaluation, firing, breaches, evidence, decided_by,
         plan, current_tier, evidence_refs)
    VALUES (as_of, decision, note, s.current_stage, s.recommended_stage, s.decision, s.firing, br, s.evidence, session_user,
            p, s.current_name, coalesce(evidence_refs, '{}'));
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.capacity_decide(decision text, note text, as_of timestamptz DEFAULT now(),
                                            plan text DEFAULT NULL, evidence_refs text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    -- runs as the caller, to resolve the hot tables on the caller's search
    -- path (capacity_bindings reads capacity_table_binding); the recording
    -- is capacity_decide_at's.  A role granted capacity_decide alone lacks
    -- both: say what to grant, not "permission denied"
    IF NOT pg_catalog.has_function_privilege(
             '@extschema@.capacity_decide_at(text, text, timestamptz, jsonb, text, text[])', 'EXECUTE')
       OR NOT pg_catalog.has_table_privilege('@extschema@.capacity_table_binding', 'SELECT') THEN
        RAISE EXCEPTION 'matter_capacity: role % may not record decisions: capacity_decide also needs EXECUTE on capacity_decide_at and SELECT on capacity_table_binding', current_user
            USING ERRCODE = '42501',
                  HINT = 'GRANT pg_monitor TO the reviewer''s role (it reads capacity_table_binding) and '
                         'GRANT EXECUTE ON FUNCTION capacity_decide(text, text, timestamptz, text, text[]), '
                         'capacity_decide_at(text, text, timestamptz, jsonb, text, text[]) TO it.';
    END IF;
    PERFORM @extschema@.capacity_decide_at(decision, note, as_of, @extschema@.capacity_bindings(), plan, evidence_refs);
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_decide IS
    'Record the review''s decision (stay, promote, rollback) with the evaluation and evidence of as_of for a plan '
    '(NULL: the active one) and evidence_refs, the paths or run ids of the artifacts it rests on. '
    'Errors: 22023 unknown decision, 42704 plan not installed, 22004 NULL or empty reference.';

CREATE VIEW @extschema@.capacity_stages AS
WITH s AS (SELECT * FROM @extschema@.capacity_stage(plan => 'matter-six-stage'))
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

CREATE OR REPLACE VIEW @extschema@.capacity_decisions AS
SELECT id, decided_at, decision, note, current_stage, recommended_stage, evaluation,
       firing, breaches, evidence, decided_by, plan, current_tier, evidence_refs
  FROM @extschema@.capacity_decision;

-- Plans (issue 14): install, import, export, choose and evaluate plans
-- other than the six-stage ladder.  Tables are in 40_stages.sql, the
-- public capacity_stage(plan => ...) in 41_stage_functions.sql, the
-- shipped documents in 46_plan_presets.sql, the plan's document format in
-- docs/plans.md.

-- An error about a plan document, naming the path of the bad field.
CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_fail(path text, message text, state text, hint text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'matter_capacity: plan document: %: %', path, message
        USING ERRCODE = state, HINT = hint, DETAIL = 'path ' || path;
END
$$;

-- One condition of a plan document, checked and normalised: the columns
-- of capacity_plan_condition as a jsonb object.  known_ind and known_set:
-- the indicators and settings the document may use (installed ones and
-- the document's own).
CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_check_condition(c jsonb, path text, known_ind text[], known_set text[])
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    agg text;
    win interval;
    per interval;
    nd integer;
BEGIN
    IF jsonb_typeof(c) IS DISTINCT FROM 'object' THEN
        PERFORM @extschema@.capacity_plan_fail(path, 'a condition must be an object', '22023',
            'A condition is {"indicator": ..., "comparator": ">", "threshold": ..., "window" or "days": ...} or {"declared": "flag"}.');
    END IF;
    FOR k IN SELECT jsonb_object_keys(c) LOOP
        IF k NOT IN ('name', 'indicator', 'declared', 'labels', 'table', 'aggregate', 'comparator', 'threshold',
                     'setting', 'window', 'days', 'daily', 'per', 'ratio_labels', 'description') THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.' || k, format('unknown field "%s"', k), '22023',
                'Condition fields: name, indicator, declared, labels, table, aggregate, comparator, threshold, setting, window, days, daily, per, ratio_labels, description.');
        END IF;
        IF k IN ('name', 'indicator', 'declared', 'table', 'aggregate', 'comparator', 'setting', 'window', 'daily', 'per', 'description')
           AND jsonb_typeof(c -> k) <> 'string' THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.' || k, format('"%s" must be a string', k), '22023', 'Quote the value.');
        END IF;
    END LOOP;
    IF (c ? 'indicator') = (c ? 'declared') THEN
        PERFORM @extschema@.capacity_plan_fail(path, 'a condition has exactly one of "indicator" and "declared"', '22023',
            'A metric condition names an indicator; a declared one names a flag set with capacity_declare().');
    END IF;
    IF c ? 'name' AND c ->> 'name' !~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$' THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.name', format('"%s" is not a condition name', c ->> 'name'), '22023',
            'Names are 1 to 63 letters, digits and _ . : / -.');
    END IF;
    IF c ? 'declared' THEN
        IF c ->> 'declared' !~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$' THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.declared', format('"%s" is not a flag name', c ->> 'declared'), '22023',
                'Flags are 1 to 63 letters, digits and _ . : / -.');
        END IF;
        FOR k IN SELECT jsonb_object_keys(c) LOOP
            IF k NOT IN ('name', 'declared', 'description') THEN
                PERFORM @extschema@.capacity_plan_fail(path || '.' || k, format('a declared condition has no "%s"', k), '22023',
                    'A declared condition holds while its flag is declared: {"declared": "flag", "description": ...}.');
            END IF;
        END LOOP;
        RETURN jsonb_build_object('declared_flag', c ->> 'declared', 'indicator', NULL, 'aggregate', 'latest',
                                  'comparator', '>', 'sustain', '0', 'label_filter', '{}'::jsonb,
                                  'description', coalesce(c ->> 'description', 'declared: ' || (c ->> 'declared')));
    END IF;
    IF NOT (c ->> 'indicator' = ANY (known_ind)) THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.indicator', format('unknown indicator "%s"', c ->> 'indicator'), '42704',
            'Use an indicator of capacity_indicator, or declare a pushed one under $.indicators.');
    END IF;
    IF coalesce(c ->> 'comparator', '>') NOT IN ('>', '>=', '<', '<=') THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.comparator', format('unknown comparator "%s"', c ->> 'comparator'), '22023',
            'Comparators: >, >=, <, <=.');
    END IF;
    IF (CASE WHEN jsonb_typeof(c -> 'threshold') IS DISTINCT FROM 'number' THEN true
             ELSE abs((c ->> 'threshold')::numeric) > 1e300 END) THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.threshold', 'a metric condition needs a numeric "threshold" (at most 1e300)', '22023',
            'The threshold is in the indicator''s unit, or a factor of "setting".');
    END IF;
    IF c ? 'setting' AND NOT (c ->> 'setting' = ANY (known_set)) THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.setting', format('unknown setting "%s"', c ->> 'setting'), '42704',
            'Use a setting of capacity_setting, or define it under $.settings.');
    END IF;
    IF c ? 'table' AND NOT EXISTS (SELECT 1 FROM @extschema@.capacity_table_binding b WHERE b.logical_name = c ->> 'table') THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.table', format('"%s" is not a logical hot table', c ->> 'table'), '42704',
            'Logical tables are those of capacity_table_binding (Event, AuditEntry).');
    END IF;
    FOR k IN SELECT x FROM unnest(ARRAY['labels', 'ratio_labels']) x LOOP
        IF c ? k AND jsonb_typeof(c -> k) <> 'object' THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.' || k, format('"%s" must be an object of labels', k), '22023',
                'For example {"region": "eu"}.');
        END IF;
    END LOOP;
    IF c ? 'window' THEN
        BEGIN
            win := (c ->> 'window')::interval;
        EXCEPTION WHEN OTHERS THEN
            win := NULL;
        END;
        IF win IS NULL OR win <= interval '0' OR win > interval '400 days' THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.window', format('window "%s" is not an interval between 0 and 400 days', c ->> 'window'), '22023',
                'For example "1 hour", "30 minutes", "14 days"; use "days" for N consecutive UTC days.');
        END IF;
    END IF;
    IF c ? 'days' THEN
        IF (CASE WHEN jsonb_typeof(c -> 'days') <> 'number' THEN true
                 ELSE (c ->> 'days')::numeric <> trunc((c ->> 'days')::numeric)
                      OR (c ->> 'days')::numeric NOT BETWEEN 1 AND 366 END) THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.days', format('days %s is not a whole number from 1 to 366', c -> 'days'), '22023',
                'N consecutive UTC days: each day''s aggregate breaches.');
        END IF;
        nd := (c ->> 'days')::integer;
        IF c ? 'window' THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.window', 'a condition has "days" or "window", not both', '22023',
                '"days": N consecutive UTC days; "window": every sample of a sliding window.');
        END IF;
    END IF;
    agg := coalesce(c ->> 'aggregate', CASE WHEN nd IS NOT NULL THEN 'days' WHEN win IS NOT NULL THEN 'all' ELSE 'latest' END);
    IF agg NOT IN ('all', 'latest', 'growth', 'ratio', 'days') OR (agg = 'days') <> (nd IS NOT NULL) THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.aggregate', format('aggregate "%s" does not fit this condition', agg), '22023',
            'Aggregates: all (needs window), latest, growth (needs window and per), ratio (needs window and ratio_labels), days (needs days).');
    END IF;
    IF agg IN ('all', 'growth', 'ratio') AND win IS NULL THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.window', format('aggregate %s needs a "window"', agg), '22023',
            'For example "window": "1 hour".');
    END IF;
    IF c ? 'daily' AND (agg <> 'days' OR c ->> 'daily' NOT IN ('avg', 'max', 'min', 'p95')) THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.daily', format('daily "%s" needs "days" and is one of avg, max, min, p95', c ->> 'daily'), '22023',
            'Each UTC day is summarised by its avg (default), max, min or p95.');
    END IF;
    IF agg = 'growth' THEN
        BEGIN
            per := (c ->> 'per')::interval;
        EXCEPTION WHEN OTHERS THEN
            per := NULL;
        END;
        IF per IS NULL OR per <= interval '0' THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.per', 'a growth condition needs "per", a positive interval', '22023',
                'For example "per": "30 days" for rows per month.');
        END IF;
    ELSIF c ? 'per' THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.per', '"per" belongs to growth conditions', '22023', 'Remove it or set "aggregate": "growth".');
    END IF;
    IF (agg = 'ratio') <> (c ? 'ratio_labels') THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.ratio_labels', 'a ratio condition has "ratio_labels" and only it has', '22023',
            'ratio: the window average of labels over that of ratio_labels.');
    END IF;
    RETURN jsonb_build_object(
        'indicator', c ->> 'indicator', 'declared_flag', NULL,
        'label_filter', coalesce(c -> 'labels', '{}'::jsonb), 'bind_table', c ->> 'table',
        'aggregate', agg, 'ratio_filter', c -> 'ratio_labels', 'per_period', per::text,
        'comparator', coalesce(c ->> 'comparator', '>'), 'threshold', (c ->> 'threshold')::float8,
        'threshold_setting', c ->> 'setting', 'sustain', coalesce(win, interval '0')::text,
        'days', nd, 'daily', CASE WHEN agg = 'days' THEN coalesce(c ->> 'daily', 'avg') END,
        'description', coalesce(c ->> 'description',
            format('%s %s %s%s%s', c ->> 'indicator', coalesce(c ->> 'comparator', '>'), c ->> 'threshold',
                   CASE WHEN c ? 'setting' THEN ' x ' || (c ->> 'setting') ELSE '' END,
                   CASE WHEN nd IS NOT NULL THEN format(' on %s consecutive UTC days', nd)
                        WHEN win IS NOT NULL THEN ' for ' || (c ->> 'window') ELSE '' END)));
END
$$;

-- A rule of a step ({"any": [condition or {"all": [...]}, ...]} or
-- {"all": [condition, ...]}) as rows: (grp, path, condition).
CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_rule_groups(r jsonb, path text)
RETURNS TABLE(grp integer, pos integer, cpath text, cond jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    i integer;
    j integer;
    item jsonb;
BEGIN
    IF jsonb_typeof(r) IS DISTINCT FROM 'object' OR (SELECT count(*) FROM jsonb_object_keys(r)) <> 1
       OR NOT (r ? 'any' OR r ? 'all') THEN
        PERFORM @extschema@.capacity_plan_fail(path, 'a rule is {"any": [...]} or {"all": [...]}', '22023',
            'any: one of the items holds (an item is a condition or {"all": [conditions]}); all: every condition holds.');
    END IF;
    k := CASE WHEN r ? 'any' THEN 'any' ELSE 'all' END;
    IF jsonb_typeof(r -> k) <> 'array' OR jsonb_array_length(r -> k) = 0 THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.' || k, 'must be a non-empty array of conditions', '22023',
            'List at least one condition.');
    END IF;
    FOR i IN 0 .. jsonb_array_length(r -> k) - 1 LOOP
        item := r -> k -> i;
        IF k = 'all' THEN
            grp := 0; pos := i; cpath := format('%s.all[%s]', path, i); cond := item;
            RETURN NEXT;
        ELSIF jsonb_typeof(item) = 'object' AND item ? 'all' THEN
            IF (SELECT count(*) FROM jsonb_object_keys(item)) <> 1 OR jsonb_typeof(item -> 'all') <> 'array'
               OR jsonb_array_length(item -> 'all') = 0 THEN
                PERFORM @extschema@.capacity_plan_fail(format('%s.any[%s]', path, i), 'an all-of group is {"all": [conditions]}', '22023',
                    'List the conditions that must hold together.');
            END IF;
            FOR j IN 0 .. jsonb_array_length(item -> 'all') - 1 LOOP
                grp := i; pos := j; cpath := format('%s.any[%s].all[%s]', path, i, j); cond := item -> 'all' -> j;
                RETURN NEXT;
            END LOOP;
        ELSE
            grp := i; pos := 0; cpath := format('%s.any[%s]', path, i); cond := item;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;

-- Load a plan document (docs/plans.md): everything is checked first, then
-- the plan replaces any installed plan of that name (staying active if it
-- was).  Settings it defines are created or set to the document's value;
-- indicators it declares are registered as pushed ones if missing.
CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_import(doc jsonb)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pname text;
    k text;
    kind text;
    i integer;
    st jsonb;
    spath text;
    sname text;
    known_ind text[];
    known_set text[];
    steps jsonb := '[]';          -- normalised steps
    conds jsonb := '[]';          -- normalised conditions
    names text[] := '{}';
    cnames text[] := '{}';
    g record;
    nc jsonb;
    cname text;
    roots integer := 0;
    rung integer;
    cur text;
    was_active boolean;
    old_value double precision;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('import a plan');
    IF doc IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: capacity_plan_import: the plan document must not be NULL'
            USING ERRCODE = '22004', HINT = 'Start from SELECT capacity_plan_export(''tiers-abc'').';
    END IF;
    IF jsonb_typeof(doc) IS DISTINCT FROM 'object' THEN
        PERFORM @extschema@.capacity_plan_fail('$', 'a plan document is a JSON object', '22023',
            'Start from SELECT capacity_plan_export(''tiers-abc'').');
    END IF;
    -- bounded like labels (max_label_bytes) and notes: a plan is a page of
    -- text, not a store; every string (names, descriptions, runbooks) at
    -- most 4 kB, the document at most 1 MB
    IF octet_length(doc::text) > 1048576 THEN
        PERFORM @extschema@.capacity_plan_fail('$', format('the document is %s bytes, more than 1 MB', octet_length(doc::text)), '54000',
            'A plan names its tiers, gates and conditions; keep long prose in the runbooks it points to.');
    END IF;
    WITH RECURSIVE walk(path, v) AS (
        SELECT '$'::text, doc
        UNION ALL
        SELECT w.path || c.step, c.child
          FROM walk w
          CROSS JOIN LATERAL (SELECT '.' || e.key AS step, e.value AS child
                                FROM jsonb_each(CASE WHEN jsonb_typeof(w.v) = 'object' THEN w.v END) e
                              UNION ALL
                              SELECT '[' || (a.n - 1) || ']', a.child
                                FROM jsonb_array_elements(CASE WHEN jsonb_typeof(w.v) = 'array' THEN w.v END)
                                     WITH ORDINALITY AS a(child, n)) c
    )
    SELECT w.path INTO spath FROM walk w
     WHERE (jsonb_typeof(w.v) = 'string' AND octet_length(w.v #>> '{}') > 4096)
        OR octet_length(w.path) > 4096
     LIMIT 1;
    IF spath IS NOT NULL THEN
        PERFORM @extschema@.capacity_plan_fail(left(spath, 200), 'a string (or key) of more than 4096 bytes', '54000',
            'Names and descriptions are short; put long prose in the runbook the step points to.');
    END IF;
    FOR k IN SELECT jsonb_object_keys(doc) LOOP
        IF k NOT IN ('format', 'name', 'description', 'settings', 'indicators', 'tiers', 'gates', 'guardrails', 'alerts', 'grid') THEN
            PERFORM @extschema@.capacity_plan_fail('$.' || k, format('unknown field "%s"', k), '22023',
                'Plan fields: format, name, description, settings, indicators, tiers, gates, guardrails, alerts, grid.');
        END IF;
    END LOOP;
    IF doc ? 'format' AND doc -> 'format' <> '1'::jsonb THEN
        PERFORM @extschema@.capacity_plan_fail('$.format', format('format %s is not known', doc -> 'format'), '22023',
            'This version reads format 1.');
    END IF;
    pname := doc ->> 'name';
    IF jsonb_typeof(doc -> 'name') IS DISTINCT FROM 'string' OR pname !~ '^[a-z][a-z0-9_-]{0,62}$' THEN
        PERFORM @extschema@.capacity_plan_fail('$.name', 'the plan needs a "name" of lower-case letters, digits, _ and -', '22023',
            'For example "name": "acme-tiers".');
    END IF;
    IF pname = 'matter-six-stage' THEN
        PERFORM @extschema@.capacity_plan_fail('$.name', 'matter-six-stage is the shipped ladder and is not replaced by a document', '42710',
            'Import the document under another name; edit the ladder''s triggers in capacity_trigger.');
    END IF;
    IF doc ? 'description' AND jsonb_typeof(doc -> 'description') <> 'string' THEN
        PERFORM @extschema@.capacity_plan_fail('$.description', '"description" must be a string', '22023', 'Quote the value.');
    END IF;

    -- settings: {"name": {"value": n, "unit": ..., "description": ...}}
    IF doc ? 'settings' AND jsonb_typeof(doc -> 'settings') <> 'object' THEN
        PERFORM @extschema@.capacity_plan_fail('$.settings', '"settings" must be an object', '22023',
            '{"name": {"value": 1000, "unit": "per second", "description": "..."}}');
    END IF;
    FOR k, st IN SELECT * FROM jsonb_each(coalesce(doc -> 'settings', '{}')) LOOP
        IF k !~ '^[a-z][a-z0-9_]{0,62}$' THEN
            PERFORM @extschema@.capacity_plan_fail(format('$.settings.%s', k), 'not a setting name', '22023', 'Lower-case letters, digits and _.');
        END IF;
        IF (CASE WHEN jsonb_typeof(st) <> 'object' OR jsonb_typeof(st -> 'value') IS DISTINCT FROM 'number' THEN true
                 ELSE (st ->> 'value')::numeric <= 0 OR (st ->> 'value')::numeric > 1e300 END) THEN
            PERFORM @extschema@.capacity_plan_fail(format('$.settings.%s.value', k), 'a setting needs a positive "value" (at most 1e300)', '22023',
                'The figure in the setting''s unit.');
        END IF;
        IF st ? 'replace' AND jsonb_typeof(st -> 'replace') <> 'boolean' THEN
            PERFORM @extschema@.capacity_plan_fail(format('$.settings.%s.replace', k), '"replace" is true or false', '22023',
                'true: set the shared setting to this value even if it has another one (needs capacity_set_threshold).');
        END IF;
    END LOOP;
    known_set := ARRAY(SELECT s.name FROM @extschema@.capacity_setting s
                       UNION SELECT jsonb_object_keys(coalesce(doc -> 'settings', '{}')));

    -- indicators: {"name": {"unit": ..., "description": ...}}, pushed
    IF doc ? 'indicators' AND jsonb_typeof(doc -> 'indicators') <> 'object' THEN
        PERFORM @extschema@.capacity_plan_fail('$.indicators', '"indicators" must be an object', '22023',
            '{"recall_p95_ms": {"unit": "ms", "description": "..."}}');
    END IF;
    FOR k, st IN SELECT * FROM jsonb_each(coalesce(doc -> 'indicators', '{}')) LOOP
        IF NOT @extschema@.capacity_indicator_name_valid(k) OR jsonb_typeof(st) <> 'object' THEN
            PERFORM @extschema@.capacity_plan_fail(format('$.indicators.%s', k), 'an indicator is a lower-case name with {"unit", "description"}', '22023',
                'For example "recall_p95_ms": {"unit": "ms", "description": "recall p95"}.');
        END IF;
    END LOOP;
    known_ind := ARRAY(SELECT i.name FROM @extschema@.capacity_indicator i
                       UNION SELECT jsonb_object_keys(coalesce(doc -> 'indicators', '{}')));

    -- steps and their rules
    FOREACH kind IN ARRAY ARRAY['tiers', 'gates', 'guardrails', 'alerts'] LOOP
        IF doc ? kind AND jsonb_typeof(doc -> kind) <> 'array' THEN
            PERFORM @extschema@.capacity_plan_fail('$.' || kind, format('"%s" must be an array', kind), '22023', 'List the steps in order.');
        END IF;
        FOR i IN 0 .. coalesce(jsonb_array_length(doc -> kind), 0) - 1 LOOP
            st := doc -> kind -> i;
            spath := format('$.%s[%s]', kind, i);
            IF jsonb_typeof(st) <> 'object' OR jsonb_typeof(st -> 'name') IS DISTINCT FROM 'string'
               OR st ->> 'name' !~ '^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}$' THEN
                PERFORM @extschema@.capacity_plan_fail(spath || '.name', 'a step needs a "name" (letters, digits, space, _ . -)', '22023',
                    'For example "name": "B".');
            END IF;
            sname := st ->> 'name';
            IF sname = ANY (names) THEN
                PERFORM @extschema@.capacity_plan_fail(spath || '.name', format('step "%s" is named twice', sname), '42710',
                    'Tiers, gates, guardrails and alerts of a plan have distinct names.');
            END IF;
            names := names || sname;
            FOR k IN SELECT jsonb_object_keys(st) LOOP
                IF NOT (k IN ('name', 'description', 'runbook')
                        OR (kind = 'tiers' AND k IN ('from', 'enter', 'exit', 'one_way'))
                        OR (kind <> 'tiers' AND k = 'when')
                        OR (kind = 'gates' AND k = 'checklist')) THEN
                    PERFORM @extschema@.capacity_plan_fail(spath || '.' || k, format('unknown field "%s" of a %s step', k, rtrim(kind, 's')), '22023',
                        'Tiers: name, description, runbook, from, enter, exit, one_way; gates: name, description, runbook, when, checklist; guardrails and alerts: name, description, runbook, when.');
                END IF;
                IF k IN ('description', 'runbook', 'from') AND jsonb_typeof(st -> k) <> 'string' THEN
                    PERFORM @extschema@.capacity_plan_fail(spath || '.' || k, format('"%s" must be a string', k), '22023', 'Quote the value.');
                END IF;
            END LOOP;
            IF st ? 'one_way' AND jsonb_typeof(st -> 'one_way') <> 'boolean' THEN
                PERFORM @extschema@.capacity_plan_fail(spath || '.one_way', '"one_way" is true or false', '22023', 'true: never suggest moving back down.');
            END IF;
            IF kind = 'tiers' THEN
                IF st ? 'from' THEN
                    IF NOT st ? 'enter' THEN
                        PERFORM @extschema@.capacity_plan_fail(spath || '.enter', format('tier "%s" has no "enter" rule', sname), '22023',
                            'Every tier above the first says when to move into it.');
                    END IF;
                ELSE
                    roots := roots + 1;
                    IF roots > 1 THEN
                        PERFORM @extschema@.capacity_plan_fail(spath || '.from', format('tier "%s" has no "from": a ladder has one first tier', sname), '22023',
                            'Name the tier each tier is entered from.');
                    END IF;
                    IF st ? 'enter' OR st ? 'exit' THEN
                        PERFORM @extschema@.capacity_plan_fail(spath || CASE WHEN st ? 'enter' THEN '.enter' ELSE '.exit' END,
                            format('the first tier "%s" is not entered or left by a rule', sname), '22023',
                            'Put the conditions of staying in the first tier in the exit rule of the tier above it.');
                    END IF;
                END IF;
                IF coalesce((st ->> 'one_way')::boolean, false) AND st ? 'exit' THEN
                    PERFORM @extschema@.capacity_plan_fail(spath || '.exit', format('one-way tier "%s" has an exit rule', sname), '22023',
                        'Remove "exit" or "one_way".');
                END IF;
            ELSIF NOT st ? 'when' THEN
                PERFORM @extschema@.capacity_plan_fail(spath || '.when', format('step "%s" has no "when" rule', sname), '22023',
                    'A gate, guardrail or alert holds when its rule does.');
            END IF;
            IF st ? 'checklist' AND (jsonb_typeof(st -> 'checklist') <> 'array'
                   OR EXISTS (SELECT 1 FROM jsonb_array_elements(st -> 'checklist') x WHERE jsonb_typeof(x) <> 'string'
                                 OR x #>> '{}' !~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$')) THEN
                PERFORM @extschema@.capacity_plan_fail(spath || '.checklist', 'a checklist is an array of flag names', '22023',
                    'Each item is declared with capacity_declare(flag, note) once it is done.');
            END IF;
            steps := steps || jsonb_build_object('name', sname, 'kind', rtrim(kind, 's'), 'ordinal', i + 1,
                                                 'from_tier', st ->> 'from', 'one_way', coalesce((st ->> 'one_way')::boolean, false),
                                                 'runbook', st ->> 'runbook', 'description', coalesce(st ->> 'description', ''));
            FOREACH k IN ARRAY ARRAY['enter', 'exit', 'when'] LOOP
                CONTINUE WHEN NOT st ? k;
                FOR g IN SELECT * FROM @extschema@.capacity_plan_rule_groups(st -> k, spath || '.' || k) LOOP
                    nc := @extschema@.capacity_plan_check_condition(g.cond, g.cpath, known_ind, known_set);
                    cname := coalesce(g.cond ->> 'name', format('%s.%s.%s.%s', sname, k, g.grp, g.pos));
                    IF cname = ANY (cnames) THEN
                        PERFORM @extschema@.capacity_plan_fail(g.cpath || '.name', format('condition "%s" is named twice', cname), '42710',
                            'Conditions of a plan have distinct names.');
                    END IF;
                    cnames := cnames || cname;
                    conds := conds || (nc || jsonb_build_object('name', cname, 'step', sname,
                                         'rule', CASE k WHEN 'when' THEN 'enter' ELSE k END, 'grp', g.grp));
                END LOOP;
            END LOOP;
            FOR k IN SELECT x #>> '{}' FROM jsonb_array_elements(coalesce(st -> 'checklist', '[]')) x LOOP
                cname := sname || '.checklist.' || k;
                IF cname = ANY (cnames) THEN
                    PERFORM @extschema@.capacity_plan_fail(spath || '.checklist', format('checklist item "%s" is listed twice', k), '42710',
                        'List each item once.');
                END IF;
                cnames := cnames || cname;
                conds := conds || jsonb_build_object('name', cname, 'step', sname, 'rule', 'checklist', 'grp', 0,
                                     'declared_flag', k, 'aggregate', 'latest', 'comparator', '>', 'sustain', '0',
                                     'label_filter', '{}'::jsonb, 'description', 'checklist: ' || k);
            END LOOP;
        END LOOP;
    END LOOP;
    -- the grid: archetypes by size band x columns, a requirement per cell
    IF doc ? 'grid' THEN
        st := doc -> 'grid';
        IF jsonb_typeof(st) <> 'object' OR EXISTS (SELECT 1 FROM jsonb_object_keys(st) x WHERE x NOT IN ('measure', 'archetypes', 'columns', 'cells')) THEN
            PERFORM @extschema@.capacity_plan_fail('$.grid', 'a grid is {"measure", "archetypes", "columns", "cells"}', '22023',
                'See docs/plans.md, preset tenant-archetypes.');
        END IF;
        IF jsonb_typeof(st -> 'measure') IS DISTINCT FROM 'string' OR NOT (st ->> 'measure' = ANY (known_ind)) THEN
            PERFORM @extschema@.capacity_plan_fail('$.grid.measure', format('unknown indicator "%s"', st ->> 'measure'), '42704',
                'The indicator whose latest value per {tenant} label places a tenant in a size band.');
        END IF;
        IF jsonb_typeof(st -> 'archetypes') IS DISTINCT FROM 'array' OR jsonb_array_length(st -> 'archetypes') = 0 THEN
            PERFORM @extschema@.capacity_plan_fail('$.grid.archetypes', 'a non-empty array of {"name", "up_to"}', '22023',
                '"up_to" names the setting bounding the band; the last archetype has none.');
        END IF;
        IF jsonb_typeof(st -> 'columns') IS DISTINCT FROM 'array' OR jsonb_array_length(st -> 'columns') = 0
           OR EXISTS (SELECT 1 FROM jsonb_array_elements(st -> 'columns') x WHERE jsonb_typeof(x) <> 'string')
           OR (SELECT count(DISTINCT x) <> count(*) FROM jsonb_array_elements_text(st -> 'columns') x) THEN
            PERFORM @extschema@.capacity_plan_fail('$.grid.columns', 'a non-empty array of distinct column names', '22023',
                'For example ["shared pool", "dedicated database"].');
        END IF;
        FOR i IN 0 .. jsonb_array_length(st -> 'archetypes') - 1 LOOP
            sname := st -> 'archetypes' -> i ->> 'name';
            IF jsonb_typeof(st -> 'archetypes' -> i) <> 'object' OR sname IS NULL
               OR EXISTS (SELECT 1 FROM jsonb_object_keys(st -> 'archetypes' -> i) x WHERE x NOT IN ('name', 'up_to'))
               OR (SELECT count(*) FROM jsonb_array_elements(st -> 'archetypes') a WHERE a ->> 'name' = sname) > 1 THEN
                PERFORM @extschema@.capacity_plan_fail(format('$.grid.archetypes[%s]', i), 'an archetype is {"name", "up_to"} with a distinct name', '22023',
                    'For example {"name": "A", "up_to": "archetype_a_max_rows"}.');
            END IF;
            IF (i < jsonb_array_length(st -> 'archetypes') - 1) <> (st -> 'archetypes' -> i ? 'up_to')
               OR (st -> 'archetypes' -> i ? 'up_to' AND NOT (st -> 'archetypes' -> i ->> 'up_to' = ANY (known_set))) THEN
                PERFORM @extschema@.capacity_plan_fail(format('$.grid.archetypes[%s].up_to', i),
                    'every archetype but the last is bounded by a known setting', '42704',
                    'Define the band''s bound under $.settings; the last archetype takes every larger tenant.');
            END IF;
            FOR k IN SELECT jsonb_array_elements_text(st -> 'columns') LOOP
                IF coalesce(st #>> ARRAY['cells', sname, k], '') NOT IN ('required', 'recommended', 'optional', 'n.a.') THEN
                    PERFORM @extschema@.capacity_plan_fail(format('$.grid.cells.%s.%s', sname, k),
                        'each cell is required, recommended, optional or n.a.', '22023',
                        'Fill every archetype x column of the grid.');
                END IF;
            END LOOP;
        END LOOP;
    END IF;

    IF jsonb_array_length(steps) = 0 THEN
        PERFORM @extschema@.capacity_plan_fail('$', 'the plan has no tiers, gates, guardrails or alerts', '22023',
            'A plan needs at least one step.');
    END IF;

    -- the ladder: every "from" names a tier, no two tiers are entered from
    -- the same one, and walking up from the first tier reaches them all
    FOR i IN 0 .. coalesce(jsonb_array_length(doc -> 'tiers'), 0) - 1 LOOP
        st := doc -> 'tiers' -> i;
        CONTINUE WHEN NOT st ? 'from';
        IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(doc -> 'tiers') t WHERE t ->> 'name' = st ->> 'from') THEN
            PERFORM @extschema@.capacity_plan_fail(format('$.tiers[%s].from', i), format('tier "%s" is not in the plan', st ->> 'from'), '42704',
                'Name a tier listed under $.tiers.');
        END IF;
        IF (SELECT count(*) FROM jsonb_array_elements(doc -> 'tiers') t WHERE t ->> 'from' = st ->> 'from') > 1 THEN
            PERFORM @extschema@.capacity_plan_fail(format('$.tiers[%s].from', i), format('two tiers are entered from "%s": a ladder does not branch', st ->> 'from'), '42P17',
                'Each tier has at most one tier above it; use gates for independent decisions.');
        END IF;
    END LOOP;
    IF coalesce(jsonb_array_length(doc -> 'tiers'), 0) > 0 THEN
        cur := (SELECT t ->> 'name' FROM jsonb_array_elements(doc -> 'tiers') t WHERE NOT t ? 'from');
        rung := 0;
        WHILE cur IS NOT NULL LOOP
            rung := rung + 1;
            steps := (SELECT jsonb_agg(CASE WHEN s ->> 'name' = cur AND s ->> 'kind' = 'tier'
                                            THEN s || jsonb_build_object('ordinal', rung) ELSE s END)
                        FROM jsonb_array_elements(steps) s);
            cur := (SELECT t ->> 'name' FROM jsonb_array_elements(doc -> 'tiers') t WHERE t ->> 'from' = cur);
            EXIT WHEN rung > jsonb_array_length(doc -> 'tiers');
        END LOOP;
        IF rung <> jsonb_array_length(doc -> 'tiers') THEN
            -- the first tier the walk from the first one never reached
            SELECT t.o - 1 INTO i FROM jsonb_array_elements(doc -> 'tiers') WITH ORDINALITY t(v, o)
             WHERE t.v ? 'from' AND NOT EXISTS (
                   WITH RECURSIVE up(n, d) AS (
                       SELECT x ->> 'name', 1 FROM jsonb_array_elements(doc -> 'tiers') x WHERE NOT x ? 'from'
                       UNION ALL
                       SELECT x ->> 'name', up.d + 1 FROM up JOIN jsonb_array_elements(doc -> 'tiers') x ON x ->> 'from' = up.n
                        WHERE up.d <= jsonb_array_length(doc -> 'tiers'))
                   SELECT 1 FROM up WHERE up.n = t.v ->> 'name')
             ORDER BY t.o LIMIT 1;
            PERFORM @extschema@.capacity_plan_fail(format('$.tiers[%s].from', coalesce(i, 0)),
                format('tier "%s" is on a cycle: the ladder never reaches it from its first tier', doc -> 'tiers' -> coalesce(i, 0) ->> 'name'),
                '42P17', 'A ladder starts at one tier without "from"; each other tier names the one below it.');
        END IF;
    END IF;

    -- all checked: write
    SELECT p.active INTO was_active FROM @extschema@.capacity_plan p WHERE p.name = pname;
    DELETE FROM @extschema@.capacity_plan p WHERE p.name = pname;
    -- settings are shared (the ladder's triggers and every plan read them):
    -- a document creates the missing ones; one that exists with another
    -- value keeps it unless the document says "replace": true and the
    -- caller may change thresholds (review F5: importing an inactive plan
    -- muted the active ladder).
    FOR k, st IN SELECT * FROM jsonb_each(coalesce(doc -> 'settings', '{}')) LOOP
        SELECT s.value INTO old_value FROM @extschema@.capacity_setting s WHERE s.name = k;
        IF NOT FOUND THEN
            INSERT INTO @extschema@.capacity_setting (name, value, default_value, unit, description)
            VALUES (k, (st ->> 'value')::float8, (st ->> 'value')::float8, st ->> 'unit',
                    coalesce(st ->> 'description', format('setting of plan %s', pname)));
        ELSIF old_value IS DISTINCT FROM (st ->> 'value')::float8 THEN
            IF coalesce((st ->> 'replace')::boolean, false) THEN
                IF NOT has_function_privilege(session_user,
                        '@extschema@.capacity_set_threshold(pg_catalog.text, double precision)'::regprocedure, 'EXECUTE') THEN
                    RAISE EXCEPTION 'matter_capacity: plan % may not replace shared setting % (% -> %)', pname, k, old_value, st ->> 'value'
                        USING ERRCODE = '42501', DETAIL = 'Nothing was imported.',
                              HINT = 'Replacing a setting every plan reads needs EXECUTE on capacity_set_threshold; drop "replace" to keep the current value.';
                END IF;
                UPDATE @extschema@.capacity_setting s SET value = (st ->> 'value')::float8 WHERE s.name = k;
            ELSE
                RAISE NOTICE 'matter_capacity: shared setting % keeps its value % (plan % says %)', k, old_value, pname, st ->> 'value'
                    USING HINT = 'Other plans and the ladder read it: change it with capacity_set_threshold(), or add "replace": true to it in the document.';
            END IF;
        END IF;
    END LOOP;
    INSERT INTO @extschema@.capacity_indicator (name, unit, source, description, owner)
    SELECT e.key, e.value ->> 'unit', 'push', coalesce(e.value ->> 'description', format('pushed for plan %s', pname)),
           session_user::text::regrole
      FROM jsonb_each(coalesce(doc -> 'indicators', '{}')) e
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.capacity_indicator i WHERE i.name = e.key);
    INSERT INTO @extschema@.capacity_plan (name, description, doc, active)
    VALUES (pname, coalesce(doc ->> 'description', ''), doc, coalesce(was_active, false));
    INSERT INTO @extschema@.capacity_plan_step (plan, name, kind, ordinal, from_tier, one_way, runbook, description)
    SELECT pname, s.name, s.kind, s.ordinal, s.from_tier, s.one_way, s.runbook, s.description
      FROM jsonb_to_recordset(steps) AS s(name text, kind text, ordinal integer, from_tier text, one_way boolean,
                                          runbook text, description text);
    INSERT INTO @extschema@.capacity_plan_condition
        (plan, name, step, rule, grp, indicator, label_filter, bind_table, aggregate, ratio_filter, per_period,
         comparator, threshold, threshold_setting, sustain, days, daily, declared_flag, description)
    SELECT pname, c.name, c.step, c.rule, c.grp, c.indicator, coalesce(c.label_filter, '{}'), c.bind_table,
           c.aggregate, c.ratio_filter, c.per_period::interval, c.comparator, c.threshold, c.threshold_setting,
           coalesce(c.sustain, '0')::interval, c.days, c.daily, c.declared_flag, c.description
      FROM jsonb_to_recordset(conds) AS c(name text, step text, rule text, grp integer, indicator text,
                                          label_filter jsonb, bind_table text, aggregate text, ratio_filter jsonb,
                                          per_period text, comparator text, threshold float8, threshold_setting text,
                                          sustain text, days integer, daily text, declared_flag text, description text);
    RETURN pname;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_plan_import(jsonb) IS
    'Load a plan document (docs/plans.md) and return its name. Every field is checked before anything changes; '
    'a bad one is refused naming its path, e.g. $.tiers[2].enter.any[0].comparator: 22023 bad value or shape, '
    '42704 unknown indicator, setting, table or tier, 42710 duplicate name, 42P17 a ladder that branches or cycles, 22004 a NULL document. '
    'An installed plan of the same name is replaced (and stays active if it was). Settings: missing ones are created; '
    'one with another value keeps it (NOTICE) unless the document says "replace": true and the caller may call '
    'capacity_set_threshold (else 42501).';

-- The evaluation behind capacity_stage(plan => name) for a plan other
-- than the six-stage ladder; same columns.  Each condition is evaluated by
-- capacity_trigger_eval (firing when any of its series fires); a group
-- holds when all its conditions fire, a rule when one of its groups does.
--   tiers:      current tier (capacity_plan_set_tier; the first tier until
--               one is set) ; promote to the highest tier above whose
--               enter rule holds; rollback to the tier below when the
--               current tier's exit rule holds (never for one-way tiers);
--   gates:      open when their rule holds and their checklist is all
--               declared (promote); rule holding with the checklist
--               incomplete is review;
--   guardrails: a rule holding is a violation (review);
--   alerts:     reported in the evidence only.
-- Otherwise review when the rule of the next move lacks data, else stay.
-- firing: the conditions of the groups that hold and decide.
-- current_stage and recommended_stage are rungs of the ladder (0 for a
-- plan without tiers).
CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_eval(as_of timestamptz, bindings jsonb, plan_name text)
RETURNS TABLE(current_stage integer, current_name text, recommended_stage integer,
              recommended_name text, decision text, firing text[], evidence jsonb,
              runbook text, evaluated_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan   -- one plan per session: see capacity_trigger_eval
AS $$
DECLARE
    rows @extschema@.capacity_trigger_row[];
    cs jsonb;               -- per condition: status and series
    rs jsonb;               -- per step and rule: holds | fails | insufficient
    gs jsonb;               -- per step, rule and group: the same
    cur record;
    up record;
    down record;
    gates_open text[];
    gates_pending text[];
    violated text[];
    insufficient text[];
    unchecked text[];
    fired text[];
    ev jsonb;
BEGIN
    PERFORM @extschema@.capacity_check_time('capacity_stage'::text, as_of);
    rows := ARRAY(SELECT e FROM @extschema@.capacity_trigger_eval(as_of, bindings, plan_name) e);
    SELECT s.* INTO up FROM @extschema@.capacity_plan_step s WHERE false;
    down := up;

    -- conditions, groups, rules
    WITH cond AS (
        SELECT c.name, c.step, c.rule, c.grp, c.description,
               CASE WHEN bool_or(e.status = 'firing') THEN 'firing'
                    WHEN bool_or(e.status IN ('ok', 'not declared')) THEN
                         CASE WHEN c.declared_flag IS NOT NULL THEN 'not declared' ELSE 'ok' END
                    ELSE coalesce(min(e.status), 'insufficient data') END AS status,
               jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                   'labels', e.labels, 'value', e.value, 'deciding_value', e.deciding_value,
                   'threshold', e.threshold, 'comparator', e.comparator, 'window', e.sustain::text,
                   'samples', e.samples, 'since', e.window_start, 'status', e.status))
                   ORDER BY e.labels::text) FILTER (WHERE e.trigger_name IS NOT NULL) AS series
          FROM @extschema@.capacity_plan_condition c
          LEFT JOIN unnest(rows) e ON e.trigger_name = c.name
         WHERE c.plan = plan_name
         GROUP BY c.name, c.step, c.rule, c.grp, c.description, c.declared_flag
    ), grp AS (
        SELECT c.step, c.rule, c.grp,
               CASE WHEN bool_and(c.status = 'firing') THEN 'holds'
                    WHEN bool_or(c.status IN ('ok', 'not declared')) THEN 'fails'
                    ELSE 'insufficient' END AS status
          FROM cond c GROUP BY 1, 2, 3
    ), rule AS (
        SELECT g.step, g.rule,
               CASE WHEN bool_or(g.status = 'holds') THEN 'holds'
                    WHEN bool_and(g.status = 'fails') THEN 'fails'
                    ELSE 'insufficient' END AS status
          FROM grp g GROUP BY 1, 2
    )
    SELECT (SELECT jsonb_object_agg(c.name, jsonb_build_object('step', c.step, 'rule', c.rule, 'group', c.grp,
                                        'status', c.status, 'description', c.description,
                                        'series', coalesce(c.series, '[]'::jsonb))) FROM cond c),
           (SELECT jsonb_object_agg(r.step || '/' || r.rule, r.status) FROM rule r),
           (SELECT jsonb_object_agg(g.step || '/' || g.rule || '/' || g.grp, g.status) FROM grp g)
      INTO cs, rs, gs;
    cs := coalesce(cs, '{}');
    rs := coalesce(rs, '{}');
    gs := coalesce(gs, '{}');

    -- the ladder
    SELECT s.* INTO cur
      FROM @extschema@.capacity_plan_step s
     WHERE s.plan = plan_name AND s.kind = 'tier'
       AND s.name = coalesce((SELECT h.tier FROM @extschema@.capacity_plan_tier_history h
                               WHERE h.plan = plan_name AND h.set_at <= as_of
                               ORDER BY h.set_at DESC, h.id DESC LIMIT 1),
                             (SELECT f.name FROM @extschema@.capacity_plan_step f
                               WHERE f.plan = plan_name AND f.kind = 'tier' AND f.from_tier IS NULL));
    IF cur.name IS NOT NULL THEN
        SELECT s.* INTO up FROM @extschema@.capacity_plan_step s
         WHERE s.plan = plan_name AND s.kind = 'tier' AND s.ordinal > cur.ordinal
           AND rs ->> (s.name || '/enter') = 'holds'
         ORDER BY s.ordinal DESC LIMIT 1;
        IF NOT cur.one_way AND rs ->> (cur.name || '/exit') = 'holds' THEN
            SELECT s.* INTO down FROM @extschema@.capacity_plan_step s
             WHERE s.plan = plan_name AND s.kind = 'tier' AND s.name = cur.from_tier;
        END IF;
    END IF;

    SELECT array_agg(s.name ORDER BY s.ordinal) FILTER (WHERE rs ->> (s.name || '/enter') = 'holds'
                                                          AND coalesce(rs ->> (s.name || '/checklist'), 'holds') = 'holds'),
           array_agg(s.name ORDER BY s.ordinal) FILTER (WHERE rs ->> (s.name || '/enter') = 'holds'
                                                          AND coalesce(rs ->> (s.name || '/checklist'), 'holds') <> 'holds')
      INTO gates_open, gates_pending
      FROM @extschema@.capacity_plan_step s WHERE s.plan = plan_name AND s.kind = 'gate';
    SELECT array_agg(s.name ORDER BY s.ordinal) INTO violated
      FROM @extschema@.capacity_plan_step s
     WHERE s.plan = plan_name AND s.kind = 'guardrail' AND rs ->> (s.name || '/enter') = 'holds';
    -- rules whose next move lacks data: the tier above, the current tier's
    -- exit, every gate (review); guardrails that lack data are listed with
    -- them but do not hold the decision (a guardrail reports a breach, it is
    -- not a move: an indicator nobody records yet must not block the verdict)
    SELECT array_agg(x.k ORDER BY x.k) FILTER (WHERE x.kind <> 'guardrail'),
           array_agg(x.k ORDER BY x.k)
      INTO insufficient, unchecked
      FROM (SELECT s.name || '/' || r.rule AS k, s.kind
              FROM @extschema@.capacity_plan_step s
              CROSS JOIN (VALUES ('enter'), ('exit')) r(rule)
             WHERE s.plan = plan_name
               AND rs ->> (s.name || '/' || r.rule) = 'insufficient'
               AND ((s.kind = 'tier' AND r.rule = 'enter' AND s.ordinal = cur.ordinal + 1)
                    OR (s.kind = 'tier' AND r.rule = 'exit' AND s.name = cur.name AND NOT s.one_way)
                    OR (s.kind IN ('gate', 'guardrail') AND r.rule = 'enter'))) x;

    current_stage := coalesce(cur.ordinal, 0);
    current_name := cur.name;
    evaluated_at := as_of;
    IF up.name IS NOT NULL OR gates_open IS NOT NULL THEN
        decision := 'promote';
        recommended_stage := coalesce(up.ordinal, current_stage);
        recommended_name := coalesce(up.name, current_name);
        runbook := coalesce(up.runbook, (SELECT s.runbook FROM @extschema@.capacity_plan_step s
                                          WHERE s.plan = plan_name AND s.name = gates_open[1]));
        fired := ARRAY(SELECT c.key FROM jsonb_each(cs) c
                        WHERE c.value ->> 'rule' = 'enter'
                          AND gs ->> (c.value ->> 'step' || '/enter/' || (c.value ->> 'group')) = 'holds'
                          AND (c.value ->> 'step' = up.name OR c.value ->> 'step' = ANY (gates_open))
                        ORDER BY c.key);
    ELSIF down.name IS NOT NULL THEN
        decision := 'rollback';
        recommended_stage := down.ordinal;
        recommended_name := down.name;
        runbook := cur.runbook;
        fired := ARRAY(SELECT c.key FROM jsonb_each(cs) c
                        WHERE c.value ->> 'step' = cur.name AND c.value ->> 'rule' = 'exit'
                        ORDER BY c.key);
    ELSE
        decision := CASE WHEN violated IS NOT NULL OR gates_pending IS NOT NULL OR insufficient IS NOT NULL
                         THEN 'review' ELSE 'stay' END;
        recommended_stage := current_stage;
        recommended_name := current_name;
        runbook := cur.runbook;
        fired := ARRAY(SELECT c.key FROM jsonb_each(cs) c
                        WHERE c.value ->> 'rule' = 'enter'
                          AND gs ->> (c.value ->> 'step' || '/enter/' || (c.value ->> 'group')) = 'holds'
                          AND (c.value ->> 'step' = ANY (violated) OR c.value ->> 'step' = ANY (gates_pending))
                        ORDER BY c.key);
    END IF;
    firing := fired;

    SELECT jsonb_build_object(
             'plan', plan_name,
             'steps', coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                 'name', s.name, 'kind', s.kind, 'ordinal', s.ordinal, 'from', s.from_tier,
                 'one_way', CASE WHEN s.kind = 'tier' THEN s.one_way END,
                 'position', CASE WHEN s.kind <> 'tier' THEN NULL
                                  WHEN s.name = cur.name THEN 'current'
                                  WHEN s.ordinal < cur.ordinal THEN 'passed' ELSE 'ahead' END,
                 'enter', rs ->> (s.name || '/enter'),
                 'exit', rs ->> (s.name || '/exit'),
                 'checklist', CASE WHEN s.kind = 'gate' THEN
                      (SELECT jsonb_object_agg(c.key, c.value ->> 'status' = 'firing') FROM jsonb_each(cs) c
                        WHERE c.value ->> 'step' = s.name AND c.value ->> 'rule' = 'checklist') END,
                 'status', CASE s.kind
                      WHEN 'gate' THEN CASE WHEN s.name = ANY (gates_open) THEN 'open'
                                            WHEN s.name = ANY (gates_pending) THEN 'evidence met, checklist incomplete'
                                            WHEN rs ->> (s.name || '/enter') = 'insufficient' THEN 'insufficient data'
                                            ELSE 'closed' END
                      WHEN 'guardrail' THEN CASE WHEN s.name = ANY (violated) THEN 'violated'
                                                 WHEN rs ->> (s.name || '/enter') = 'insufficient' THEN 'insufficient data'
                                                 ELSE 'kept' END
                      WHEN 'alert' THEN CASE rs ->> (s.name || '/enter') WHEN 'holds' THEN 'firing'
                                                                         WHEN 'fails' THEN 'ok' ELSE 'insufficient data' END
                      END)) ORDER BY s.kind <> 'tier', s.ordinal), '[]'),
             'conditions', cs,
             'insufficient_data', to_jsonb(coalesce(unchecked, '{}'::text[])))
      INTO ev
      FROM @extschema@.capacity_plan_step s WHERE s.plan = plan_name;
    evidence := ev;
    RETURN NEXT;
END
$$;

-- A condition of capacity_trigger or capacity_plan_condition as it is
-- written in a plan document.
CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_condition_doc(name text, indicator text, label_filter jsonb, bind_table text,
                                                        aggregate text, ratio_filter jsonb, per_period interval,
                                                        comparator text, threshold double precision, threshold_setting text,
                                                        sustain interval, days integer, daily text, declared_flag text,
                                                        description text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN declared_flag IS NOT NULL THEN
                jsonb_build_object('name', name, 'declared', declared_flag, 'description', description)
           ELSE jsonb_strip_nulls(jsonb_build_object(
                'name', name, 'indicator', indicator,
                'labels', CASE WHEN label_filter <> '{}' THEN label_filter END,
                'table', bind_table,
                'aggregate', CASE WHEN aggregate NOT IN ('days', CASE WHEN sustain > interval '0' THEN 'all' ELSE 'latest' END)
                                  THEN aggregate END,
                'comparator', comparator, 'threshold', threshold, 'setting', threshold_setting,
                'window', CASE WHEN aggregate <> 'days' AND sustain > interval '0' THEN sustain::text END,
                'days', days, 'daily', CASE WHEN daily <> 'avg' THEN daily END,
                'per', per_period::text, 'ratio_labels', ratio_filter,
                'description', description)) END
$$;

-- A plan as a document capacity_plan_import() reads back: a DBA keeps it
-- in version control and loads it into every cluster.  Settings carry
-- their current values.  matter-six-stage is written out as a ladder of
-- six tiers (its leading indicators as alerts); imported under another
-- name it is evaluated like any plan (without the forecasts and the
-- contradiction checks the built-in ladder adds).
CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_export(name text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text;
    d jsonb;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: capacity_plan_export: the plan to export must not be NULL'
            USING ERRCODE = '22004', HINT = 'Name an installed plan; see SELECT * FROM capacity_plans.';
    END IF;
    p := @extschema@.capacity_plan_resolve(name);
    IF p <> 'matter-six-stage' THEN
        SELECT pl.doc INTO d FROM @extschema@.capacity_plan pl WHERE pl.name = p;
        RETURN jsonb_build_object('format', 1) || d
            || CASE WHEN d ? 'settings' THEN jsonb_build_object('settings', coalesce(
                   (SELECT jsonb_object_agg(e.key, e.value || jsonb_build_object('value', coalesce(s.value, (e.value ->> 'value')::float8)))
                      FROM jsonb_each(d -> 'settings') e
                      LEFT JOIN @extschema@.capacity_setting s ON s.name = e.key), '{}'::jsonb))
               ELSE '{}' END;
    END IF;
    SELECT jsonb_build_object(
        'format', 1, 'name', p,
        'description', (SELECT pl.description FROM @extschema@.capacity_plan pl WHERE pl.name = p),
        'settings', (SELECT coalesce(jsonb_object_agg(s.name, jsonb_strip_nulls(jsonb_build_object(
                                 'value', s.value, 'unit', s.unit, 'description', s.description))), '{}')
                       FROM @extschema@.capacity_setting s
                      WHERE s.name IN (SELECT t.threshold_setting FROM @extschema@.capacity_trigger t)),
        'tiers', (SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                         'name', 'stage ' || sd.stage, 'description', sd.name || ': ' || sd.summary,
                         'runbook', sd.runbook,
                         'from', CASE WHEN sd.stage > 1 THEN 'stage ' || (sd.stage - 1) END,
                         'enter', (SELECT CASE WHEN count(*) > 0 THEN jsonb_build_object('any', jsonb_agg(
                                          @extschema@.capacity_plan_condition_doc(t.name, t.indicator, t.label_filter, t.bind_table,
                                              t.aggregate, t.ratio_filter, t.per_period, t.comparator, t.threshold,
                                              t.threshold_setting, t.sustain, NULL::integer, NULL::text, t.declared_flag, t.description)
                                          ORDER BY t.name)) END
                                     FROM @extschema@.capacity_trigger t WHERE t.stage = sd.stage AND sd.stage > 1)))
                         ORDER BY sd.stage)
                    FROM @extschema@.capacity_stage_def sd),
        'alerts', (SELECT coalesce(jsonb_agg(jsonb_build_object('name', t.name, 'description', t.description,
                          'when', jsonb_build_object('any', jsonb_build_array(
                                  @extschema@.capacity_plan_condition_doc(t.name, t.indicator, t.label_filter, t.bind_table,
                                      t.aggregate, t.ratio_filter, t.per_period, t.comparator, t.threshold,
                                      t.threshold_setting, t.sustain, NULL::integer, NULL::text, t.declared_flag, t.description))))
                          ORDER BY t.name), '[]')
                     FROM @extschema@.capacity_trigger t WHERE t.stage IS NULL))
      INTO d;
    RETURN d;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_plan_export(text) IS
    'The plan (an installed plan''s name) as a JSON document for capacity_plan_import(); settings with their current values. '
    'Errors: 22004 NULL, 42704 a plan that is not installed.';

-- Install a shipped preset (capacity_plan_preset), or put it back as
-- shipped if it is installed.
CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_install(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d jsonb;
    known text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('install a plan');
    IF name IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: capacity_plan_install: the preset to install must not be NULL'
            USING ERRCODE = '22004', HINT = 'Name a shipped preset, e.g. capacity_plan_install(''tiers-abc'').';
    END IF;
    IF name = 'matter-six-stage' THEN
        INSERT INTO @extschema@.capacity_plan (name, description, doc, active)
        SELECT 'matter-six-stage', 'The six-stage ladder: single primary, read replicas, partitioned hot tables, tenant tiers, multi-region, webhook cluster.', NULL,
               NOT EXISTS (SELECT 1 FROM @extschema@.capacity_plan p WHERE p.active)
         WHERE NOT EXISTS (SELECT 1 FROM @extschema@.capacity_plan p WHERE p.name = 'matter-six-stage');
        RETURN;
    END IF;
    SELECT p.doc INTO d FROM @extschema@.capacity_plan_preset p WHERE p.name = capacity_plan_install.name;
    IF d IS NULL THEN
        SELECT string_agg(p.name, ', ' ORDER BY p.name) INTO known FROM @extschema@.capacity_plan_preset p;
        RAISE EXCEPTION 'matter_capacity: "%" is not a shipped plan preset', coalesce(name, 'NULL')
            USING ERRCODE = '42704',
                  HINT = 'Presets: matter-six-stage, ' || known || '. Load your own plan with capacity_plan_import(doc).';
    END IF;
    PERFORM @extschema@.capacity_plan_import(d);
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_plan_install(text) IS
    'Install a shipped preset by name (matter-six-stage, tiers-abc, evidence-gates, control-plane, tenant-archetypes); '
    'an installed one is put back as shipped (its document; a shared setting it defines that has another value keeps it, with a NOTICE). '
    'Errors: 42704 an unknown preset, 22004 NULL.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_use(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('choose the active plan');
    IF name IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: the plan to use must not be NULL'
            USING ERRCODE = '22004', HINT = 'Name an installed plan; see SELECT * FROM capacity_plans.';
    END IF;
    p := @extschema@.capacity_plan_resolve(name);
    UPDATE @extschema@.capacity_plan pl SET active = (pl.name = p)
     WHERE pl.active IS DISTINCT FROM (pl.name = p);
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_plan_use(text) IS
    'Make an installed plan the active one, the plan capacity_stage() evaluates without a plan argument. Error 42704 for a plan that is not installed.';

-- Where a plan's ladder stands: the six-stage ladder's is capacity_set_stage.
CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_set_tier(plan text, tier text, note text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text;
    known text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('set a plan''s tier');
    IF plan IS NULL OR tier IS NULL THEN   -- a NULL plan is not "the active one" here
        RAISE EXCEPTION 'matter_capacity: capacity_plan_set_tier: % must not be NULL', CASE WHEN plan IS NULL THEN 'plan' ELSE 'tier' END
            USING ERRCODE = '22004', HINT = 'Name an installed plan and one of its tiers; see SELECT * FROM capacity_plans.';
    END IF;
    p := @extschema@.capacity_plan_resolve(plan);
    IF p = 'matter-six-stage' THEN
        RAISE EXCEPTION 'matter_capacity: the six-stage ladder''s stage is set with capacity_set_stage()'
            USING ERRCODE = '22023', HINT = 'SELECT capacity_set_stage(2, ''replicas live'');';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.capacity_plan_step s WHERE s.plan = p AND s.kind = 'tier' AND s.name = tier) THEN
        SELECT string_agg(s.name, ', ' ORDER BY s.ordinal) INTO known
          FROM @extschema@.capacity_plan_step s WHERE s.plan = p AND s.kind = 'tier';
        RAISE EXCEPTION 'matter_capacity: "%" is not a tier of plan %', coalesce(tier, 'NULL'), p
            USING ERRCODE = '42704', HINT = 'Tiers: ' || coalesce(known, 'none (the plan has only gates)') || '.';
    END IF;
    INSERT INTO @extschema@.capacity_plan_tier_history (plan, tier, note, set_at, set_by)
    VALUES (p, tier, note, now(), session_user);
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_plan_set_tier(text, text, text) IS
    'Record that a plan''s ladder now stands at tier (by name); capacity_stage(plan => ...) evaluates from there. Errors: 22004 NULL plan or tier, 42704 unknown plan or tier.';

CREATE VIEW @extschema@.capacity_plans AS
SELECT p.name, p.active, p.description,
       CASE WHEN p.name = 'matter-six-stage'
            THEN (SELECT array_agg('stage ' || d.stage ORDER BY d.stage) FROM @extschema@.capacity_stage_def d)
            ELSE (SELECT array_agg(s.name ORDER BY s.ordinal) FROM @extschema@.capacity_plan_step s
                   WHERE s.plan = p.name AND s.kind = 'tier') END AS tiers,
       (SELECT array_agg(s.name ORDER BY s.ordinal) FROM @extschema@.capacity_plan_step s
         WHERE s.plan = p.name AND s.kind = 'gate') AS gates,
       (SELECT array_agg(s.name ORDER BY s.ordinal) FROM @extschema@.capacity_plan_step s
         WHERE s.plan = p.name AND s.kind IN ('guardrail', 'alert')) AS guards,
       CASE WHEN p.name = 'matter-six-stage' THEN (SELECT count(*) FROM @extschema@.capacity_trigger)
            ELSE (SELECT count(*) FROM @extschema@.capacity_plan_condition c WHERE c.plan = p.name) END AS conditions,
       -- as shipped: the ladder's stages, triggers and the settings they
       -- read unedited (shipped; a deleted shipped row is listed in
       -- capacity_removed_default, not here); a preset's document as
       -- shipped and the settings it defines at its values
       CASE WHEN p.doc IS NULL
            THEN NOT EXISTS (SELECT 1 FROM @extschema@.capacity_trigger t
                               LEFT JOIN @extschema@.capacity_setting st ON st.name = t.threshold_setting
                              WHERE NOT t.shipped OR NOT coalesce(st.shipped, true))
                 AND NOT EXISTS (SELECT 1 FROM @extschema@.capacity_stage_def d WHERE NOT d.shipped)
            ELSE EXISTS (SELECT 1 FROM @extschema@.capacity_plan_preset pr WHERE pr.name = p.name AND pr.doc = p.doc)
                 AND NOT EXISTS (SELECT 1 FROM jsonb_each(coalesce(p.doc -> 'settings', '{}')) e
                                   JOIN @extschema@.capacity_setting st ON st.name = e.key
                                  WHERE st.value IS DISTINCT FROM (e.value ->> 'value')::float8) END AS preset
  FROM @extschema@.capacity_plan p
 ORDER BY p.name;
COMMENT ON VIEW @extschema@.capacity_plans IS
    'Installed plans, the active one, their tiers, gates and guards; preset: as shipped (the ladder: its stages, triggers '
    'and their settings unedited; a preset: its document and the values of the settings it defines).';

-- The grid of a plan (tenant-archetypes), answered per tenant: each
-- tenant's size (the newest value of the grid's measure per {tenant}
-- label in the 7 days to as_of), its archetype (the first band whose
-- bound setting it does not exceed) and what each column requires.
CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_grid(plan text DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS TABLE(tenant text, size double precision, archetype text, grid_column text, requirement text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text := @extschema@.capacity_plan_resolve(plan);
    g jsonb;
BEGIN
    PERFORM @extschema@.capacity_check_time('capacity_plan_grid'::text, as_of);
    SELECT pl.doc -> 'grid' INTO g FROM @extschema@.capacity_plan pl WHERE pl.name = p;
    IF g IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: plan % has no archetype grid', p
            USING ERRCODE = '22023', HINT = 'Install the preset tenant-archetypes, or add "grid" to your plan''s document.';
    END IF;
    RETURN QUERY
    WITH sizes AS (
        SELECT DISTINCT ON (s.labels ->> 'tenant') s.labels ->> 'tenant' AS tenant, s.value
          FROM @extschema@.capacity_sample s
         WHERE s.indicator = g ->> 'measure' AND s.labels ? 'tenant'
           AND s.sampled_at <= as_of AND s.sampled_at > as_of - interval '7 days'
         ORDER BY s.labels ->> 'tenant', s.sampled_at DESC
    ), bands AS (
        SELECT a.v ->> 'name' AS name, a.o, st.value AS up_to
          FROM jsonb_array_elements(g -> 'archetypes') WITH ORDINALITY a(v, o)
          LEFT JOIN @extschema@.capacity_setting st ON st.name = a.v ->> 'up_to'
    ), placed AS (
        SELECT z.tenant, z.value,
               (SELECT b.name FROM bands b WHERE b.up_to IS NULL OR z.value <= b.up_to ORDER BY b.o LIMIT 1) AS archetype
          FROM sizes z
    )
    SELECT pt.tenant, pt.value, pt.archetype, c.col, g #>> ARRAY['cells', pt.archetype, c.col]
      FROM placed pt
     CROSS JOIN jsonb_array_elements_text(g -> 'columns') WITH ORDINALITY c(col, o)
     ORDER BY pt.tenant, c.o;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_plan_grid(text, timestamptz) IS
    'Per tenant of a plan with an archetype grid (tenant-archetypes): its size (the grid''s measure, labels {tenant}), '
    'its archetype by the size-band settings, and each column''s requirement (required, recommended, optional, n.a.). '
    'Errors: 42704 plan not installed, 22023 plan without a grid.';

-- The connection-pool budget: the pool sizes set with capacity_set_pool_size
-- against max_connections less the reserved connections, in percent (what
-- tenant-archetypes reads as pool_budget_percent; push it with
-- SELECT capacity_record('pool_budget_percent', percent) FROM capacity_pool_budget()).
CREATE OR REPLACE FUNCTION @extschema@.capacity_pool_budget()
RETURNS TABLE(pool_sizes bigint, budget integer, percent double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(sum(p.pool_size), 0)::bigint,
           current_setting('max_connections')::integer - current_setting('superuser_reserved_connections')::integer,
           100.0 * coalesce(sum(p.pool_size), 0)
                 / nullif(current_setting('max_connections')::integer - current_setting('superuser_reserved_connections')::integer, 0)
      FROM @extschema@.capacity_pool_size p
$$;
COMMENT ON FUNCTION @extschema@.capacity_pool_budget() IS
    'Sum of the pool sizes set with capacity_set_pool_size, the connection budget (max_connections less superuser_reserved_connections) and their ratio in percent.';

-- Shipped plans.  matter-six-stage is installed and active; the others are
-- documents capacity_plan_install(name) loads (docs/plans.md describes
-- each).  Indicators a preset names that nothing samples yet are declared
-- by its document and registered as pushed ones when it is installed.

INSERT INTO @extschema@.capacity_plan (name, description, doc, active) VALUES
 ('matter-six-stage',
  'The six-stage ladder: single primary, read replicas, partitioned hot tables, tenant tiers, multi-region, webhook cluster.',
  NULL, true);

-- tiers-abc: three tiers of one cluster's life.  A while every A condition
-- holds; B when any B trigger holds on 3 consecutive UTC days (back to A
-- when every A condition holds on 7); C, one way, when any C trigger holds
-- on 7.  Guardrail: purge by partition only.
INSERT INTO @extschema@.capacity_plan_preset (name, doc) VALUES ('tiers-abc', $doc$
{
  "format": 1,
  "name": "tiers-abc",
  "description": "Tier A (one shared cluster), B (scaled: replicas, pool, partitions), C (the top tenant moves out). B after 3 breaching days, back to A after 7 healthy ones, C after 7; C is one-way.",
  "settings": {
    "cluster_write_capacity_qps": {"value": 2000, "unit": "per second",
      "description": "Steady-state write capacity of the cluster (the top tenant's share of it decides tiers A and C)"}
  },
  "indicators": {
    "recall_p95_ms":           {"unit": "ms", "description": "Recall (search/read-back) p95 as the application measures it"},
    "tenant_top_write_qps":    {"unit": "per second", "description": "Write QPS of the tenant that writes most"},
    "tenant_top_growth_share": {"unit": "ratio", "description": "Top tenant's share (0..1) of the month's cluster storage growth"},
    "table_rows_deleted":      {"unit": "rows", "description": "Rows deleted row by row from managed tables, cumulative (the sampler provides it once the delete counter lands; until then push it)"}
  },
  "tiers": [
    {"name": "A", "description": "One shared cluster: write p95 <= 200 ms, recall p95 <= 800 ms, DB CPU p95 <= 65 %, top tenant <= 20 % of write capacity."},
    {"name": "B", "from": "A", "runbook": "docs/runbooks/read-replicas.md",
     "description": "Scaled cluster: read replicas, a larger pool, partitioned hot tables.",
     "enter": {"any": [
       {"name": "B.recall_p95", "indicator": "recall_p95_ms", "comparator": ">", "threshold": 800, "days": 3,
        "description": "recall p95 > 800 ms on 3 consecutive UTC days"},
       {"name": "B.cpu_p95", "indicator": "cpu_utilization", "comparator": ">", "threshold": 65, "days": 3, "daily": "p95",
        "description": "DB CPU p95 > 65 % on 3 consecutive UTC days"},
       {"all": [
         {"name": "B.pool_saturated", "indicator": "pool_utilization", "comparator": ">=", "threshold": 90, "days": 3, "daily": "max",
          "description": "reads saturate the pool: pool utilisation peaks >= 90 % on 3 consecutive UTC days"},
         {"name": "B.writes_stable", "indicator": "write_latency_p95_ms", "comparator": "<=", "threshold": 200, "days": 3,
          "description": "while writes stay stable: write p95 <= 200 ms on the same days"}]}
     ]},
     "exit": {"all": [
       {"name": "A.write_p95", "indicator": "write_latency_p95_ms", "comparator": "<=", "threshold": 200, "days": 7,
        "description": "write p95 <= 200 ms on 7 consecutive UTC days"},
       {"name": "A.recall_p95", "indicator": "recall_p95_ms", "comparator": "<=", "threshold": 800, "days": 7,
        "description": "recall p95 <= 800 ms on 7 consecutive UTC days"},
       {"name": "A.cpu_p95", "indicator": "cpu_utilization", "comparator": "<=", "threshold": 65, "days": 7, "daily": "p95",
        "description": "DB CPU p95 <= 65 % on 7 consecutive UTC days"},
       {"name": "A.top_tenant", "indicator": "tenant_top_write_qps", "comparator": "<=", "threshold": 0.20,
        "setting": "cluster_write_capacity_qps", "days": 7,
        "description": "top tenant's write QPS <= 20 % of the cluster's write capacity on 7 consecutive UTC days"}]}},
    {"name": "C", "from": "B", "one_way": true, "runbook": "docs/runbooks/tenant-tier-migration.md",
     "description": "The top tenant gets its own database; one-way.",
     "enter": {"any": [
       {"name": "C.top_tenant", "indicator": "tenant_top_write_qps", "comparator": ">=", "threshold": 0.35,
        "setting": "cluster_write_capacity_qps", "days": 7,
        "description": "top tenant's write QPS >= 35 % of write capacity on 7 consecutive UTC days"},
       {"name": "C.top_tenant_growth", "indicator": "tenant_top_growth_share", "comparator": ">=", "threshold": 0.30, "days": 7,
        "description": "top tenant >= 30 % of the month's storage growth on 7 consecutive UTC days"},
       {"all": [
         {"name": "C.tier_b_applied", "declared": "tiers-abc:tier_b_applied",
          "description": "declared: Tier B is fully applied"},
         {"name": "C.write_p95", "indicator": "write_latency_p95_ms", "comparator": ">", "threshold": 300, "days": 7,
          "description": "write p95 > 300 ms on 7 consecutive UTC days after Tier B is fully applied"}]}
     ]}}
  ],
  "guardrails": [
    {"name": "purge by partition only", "runbook": "docs/partitioning.md",
     "description": "Old rows of managed tables leave by detaching partitions (retention), never by bulk DELETE.",
     "when": {"any": [
       {"name": "guard.bulk_delete", "indicator": "table_rows_deleted", "aggregate": "growth", "per": "1 day",
        "window": "1 day", "comparator": ">", "threshold": 10000,
        "description": "more than 10,000 rows a day deleted row by row from a managed table"}]}}
  ]
}
$doc$::jsonb);

-- evidence-gates: four independent decisions, each taken only when all of
-- its evidence holds and its checklist is declared; the system thresholds
-- are alerts beside them.
INSERT INTO @extschema@.capacity_plan_preset (name, doc) VALUES ('evidence-gates', $doc$
{
  "format": 1,
  "name": "evidence-gates",
  "description": "Four independent evidence gates (API bottleneck, search, WebSocket limit, pool exhaustion), each with a decision checklist, and the system thresholds as alerts.",
  "settings": {},
  "indicators": {
    "endpoint_p95_ms":            {"unit": "ms", "description": "API endpoint p95, labels {endpoint}"},
    "statement_top_share":        {"unit": "ratio", "description": "Share (0..1) of database execution time taken by the costliest statement"},
    "messages_per_second":        {"unit": "per second", "description": "Messages the API handles per second"},
    "searches_per_day":           {"unit": "per day", "description": "Searches in the last 24 h"},
    "search_p95_ms":              {"unit": "ms", "description": "Search p95"},
    "search_db_time_share":       {"unit": "ratio", "description": "Share (0..1) of database time spent on search"},
    "websocket_peak_concurrent":  {"unit": "count", "description": "Peak concurrent WebSocket connections"},
    "websocket_rejections":       {"unit": "count", "description": "WebSocket connections rejected since the last push"},
    "websocket_delivery_p95_ms":  {"unit": "ms", "description": "WebSocket message delivery latency p95"},
    "connection_timeout_errors":  {"unit": "count", "description": "Connection timeouts at the pool since the last push"},
    "pool_services":              {"unit": "count", "description": "Services sharing the busiest pool"},
    "api_p95_ms":                 {"unit": "ms", "description": "API p95 over all endpoints"},
    "cache_memory_utilization":   {"unit": "percent", "description": "Cache (Redis, memcached) memory in use"},
    "outbox_lag_seconds":         {"unit": "seconds", "description": "Age of the oldest unpublished outbox row"},
    "worker_queue_depth":         {"unit": "count", "description": "Jobs waiting in the worker queue"}
  },
  "gates": [
    {"name": "api-bottleneck", "description": "Split the API service or its hottest statement off.",
     "when": {"all": [
       {"name": "api.endpoint_p95", "indicator": "endpoint_p95_ms", "comparator": ">", "threshold": 200, "days": 14,
        "description": "an endpoint's p95 > 200 ms on 14 consecutive UTC days"},
       {"name": "api.statement_share", "indicator": "statement_top_share", "comparator": ">", "threshold": 0.40, "window": "1 hour",
        "description": "one statement > 40 % of database execution time for an hour"},
       {"name": "api.throughput", "indicator": "messages_per_second", "comparator": ">", "threshold": 1000, "window": "1 hour",
        "description": "throughput > 1,000 msg/s for an hour"}]},
     "checklist": ["api-bottleneck:evidence_met", "api-bottleneck:optimisation_exhausted", "api-bottleneck:clear_boundary",
                   "api-bottleneck:owner", "api-bottleneck:cost_benefit", "api-bottleneck:observability_plan"]},
    {"name": "search", "description": "Move search to a dedicated engine.",
     "when": {"all": [
       {"name": "search.volume", "indicator": "searches_per_day", "comparator": ">", "threshold": 100,
        "description": "more than 100 searches a day"},
       {"name": "search.p95", "indicator": "search_p95_ms", "comparator": ">", "threshold": 1000, "window": "1 hour",
        "description": "search p95 > 1 s for an hour"},
       {"name": "search.db_share", "indicator": "search_db_time_share", "comparator": ">", "threshold": 0.10, "window": "1 hour",
        "description": "search > 10 % of database time for an hour"}]},
     "checklist": ["search:evidence_met", "search:optimisation_exhausted", "search:clear_boundary",
                   "search:owner", "search:cost_benefit", "search:observability_plan"]},
    {"name": "websocket-limit", "description": "Move WebSocket fan-out to its own tier.",
     "when": {"all": [
       {"name": "ws.peak", "indicator": "websocket_peak_concurrent", "comparator": ">", "threshold": 50000,
        "description": "peak concurrent connections > 50,000"},
       {"name": "ws.rejections", "indicator": "websocket_rejections", "comparator": ">", "threshold": 0,
        "description": "connections are being rejected"},
       {"name": "ws.latency", "indicator": "websocket_delivery_p95_ms", "comparator": ">", "threshold": 500, "days": 3,
        "description": "delivery latency degrading: p95 > 500 ms on 3 consecutive UTC days"}]},
     "checklist": ["websocket-limit:evidence_met", "websocket-limit:optimisation_exhausted", "websocket-limit:clear_boundary",
                   "websocket-limit:owner", "websocket-limit:cost_benefit", "websocket-limit:observability_plan"]},
    {"name": "pool-exhaustion", "description": "Give services their own pools or a pooler tier.",
     "when": {"all": [
       {"name": "pool.utilisation", "indicator": "pool_utilization", "comparator": ">", "threshold": 80, "window": "1 hour",
        "description": "pool utilisation > 80 % for an hour or more"},
       {"name": "pool.timeouts", "indicator": "connection_timeout_errors", "comparator": ">", "threshold": 0,
        "description": "connection timeout errors"},
       {"name": "pool.shared", "indicator": "pool_services", "comparator": ">", "threshold": 1,
        "description": "several services on one pool"}]},
     "checklist": ["pool-exhaustion:evidence_met", "pool-exhaustion:optimisation_exhausted", "pool-exhaustion:clear_boundary",
                   "pool-exhaustion:owner", "pool-exhaustion:cost_benefit", "pool-exhaustion:observability_plan"]}
  ],
  "alerts": [
    {"name": "api p95", "when": {"any": [{"name": "sys.api_p95", "indicator": "api_p95_ms", "comparator": ">", "threshold": 200, "window": "1 hour",
        "description": "API p95 > 200 ms for an hour"}]}},
    {"name": "db cpu", "when": {"any": [{"name": "sys.db_cpu", "indicator": "cpu_utilization", "comparator": ">", "threshold": 70, "days": 14,
        "description": "DB CPU > 70 % on 14 consecutive UTC days"}]}},
    {"name": "pool", "when": {"any": [{"name": "sys.pool", "indicator": "pool_utilization", "comparator": ">", "threshold": 80, "window": "1 hour",
        "description": "pool utilisation > 80 % for an hour"}]}},
    {"name": "cache memory", "when": {"any": [{"name": "sys.cache_memory", "indicator": "cache_memory_utilization", "comparator": ">", "threshold": 80,
        "description": "cache memory > 80 %"}]}},
    {"name": "websocket latency", "when": {"any": [{"name": "sys.ws_latency", "indicator": "websocket_delivery_p95_ms", "comparator": ">", "threshold": 500, "window": "15 minutes",
        "description": "WebSocket delivery latency > 500 ms for 15 minutes"}]}},
    {"name": "outbox lag", "when": {"any": [{"name": "sys.outbox_lag", "indicator": "outbox_lag_seconds", "comparator": ">", "threshold": 5, "window": "15 minutes",
        "description": "outbox lag > 5 s for 15 minutes"}]}},
    {"name": "worker queue", "when": {"any": [{"name": "sys.worker_queue", "indicator": "worker_queue_depth", "comparator": ">", "threshold": 10000,
        "description": "worker queue depth > 10,000"}]}}
  ]
}
$doc$::jsonb);

-- control-plane: an event-sourced control plane's stages 0-3.  Each move
-- needs the stage's exit criteria declared (the team's own checklist) and
-- a measured pressure; host-level figures are alerts with the mesh
-- thresholds as settings.
INSERT INTO @extschema@.capacity_plan_preset (name, doc) VALUES ('control-plane', $doc$
{
  "format": 1,
  "name": "control-plane",
  "description": "Control-plane stages 0-3: inline projections, async projections, standby and read offload, sharded mesh. A move needs the current stage's exit criteria declared and a measured pressure; stage 3 is one-way.",
  "settings": {
    "mesh_nodes_warning": {"value": 25, "unit": "nodes", "description": "Node count at which the service mesh needs planning (stage 2)"},
    "mesh_nodes_limit":   {"value": 50, "unit": "nodes", "description": "Node count the mesh is not run beyond without sharding (stage 3)"}
  },
  "indicators": {
    "event_append_per_second":        {"unit": "per second", "description": "Events appended to the event store per second"},
    "projection_lag_seconds":         {"unit": "seconds", "description": "Age of the newest event not yet in the read projections"},
    "cluster_node_count":             {"unit": "nodes", "description": "Nodes in the cluster (host level, pushed by the platform)"},
    "node_allocatable_memory_percent": {"unit": "percent", "description": "Allocatable memory left on the fullest node (host level)"},
    "cpu_overcommit_ratio":           {"unit": "ratio", "description": "CPU requested over allocatable across the cluster (host level)"}
  },
  "tiers": [
    {"name": "stage 0", "description": "One database, projections written inline with the events."},
    {"name": "stage 1", "from": "stage 0", "description": "Projections built asynchronously from the event log.",
     "enter": {"any": [
       {"all": [{"name": "cp.stage0_exit", "declared": "control-plane:stage-0-exit-criteria",
                 "description": "declared: stage 0's exit criteria are met"},
                {"name": "cp.append_rate", "indicator": "event_append_per_second", "comparator": ">", "threshold": 500, "days": 3, "daily": "max",
                 "description": "event append rate peaks above 500/s on 3 consecutive UTC days"}]},
       {"all": [{"name": "cp.stage0_exit_lag", "declared": "control-plane:stage-0-exit-criteria",
                 "description": "declared: stage 0's exit criteria are met"},
                {"name": "cp.inline_projection_lag", "indicator": "projection_lag_seconds", "comparator": ">", "threshold": 2, "days": 3, "daily": "p95",
                 "description": "inline projections lag: daily p95 above 2 s on 3 consecutive UTC days"}]}]},
     "exit": {"all": [
       {"name": "cp.append_rate_low", "indicator": "event_append_per_second", "comparator": "<=", "threshold": 100, "days": 14, "daily": "max",
        "description": "append rate peaks at most 100/s on 14 consecutive UTC days"}]}},
    {"name": "stage 2", "from": "stage 1", "description": "A hot standby takes projection reads; writes stay on the primary.",
     "enter": {"any": [
       {"all": [{"name": "cp.stage1_exit", "declared": "control-plane:stage-1-exit-criteria",
                 "description": "declared: stage 1's exit criteria are met"},
                {"name": "cp.async_projection_lag", "indicator": "projection_lag_seconds", "comparator": ">", "threshold": 5, "days": 3, "daily": "p95",
                 "description": "async projections lag: daily p95 above 5 s on 3 consecutive UTC days"}]},
       {"all": [{"name": "cp.stage1_exit_nodes", "declared": "control-plane:stage-1-exit-criteria",
                 "description": "declared: stage 1's exit criteria are met"},
                {"name": "cp.nodes_warning", "indicator": "cluster_node_count", "comparator": ">=", "threshold": 1, "setting": "mesh_nodes_warning",
                 "description": "the cluster reaches the mesh warning size (25 nodes)"}]}]},
     "exit": {"all": [
       {"name": "cp.standby_lagging", "indicator": "replica_lag_seconds", "comparator": ">", "threshold": 30, "days": 3, "daily": "max",
        "description": "the standby's lag peaks above 30 s on 3 consecutive UTC days: reads go back to the primary"}]}},
    {"name": "stage 3", "from": "stage 2", "one_way": true, "description": "The control plane is sharded; one mesh per shard.",
     "enter": {"any": [
       {"all": [{"name": "cp.stage2_exit", "declared": "control-plane:stage-2-exit-criteria",
                 "description": "declared: stage 2's exit criteria are met"},
                {"name": "cp.nodes_limit", "indicator": "cluster_node_count", "comparator": ">=", "threshold": 1, "setting": "mesh_nodes_limit", "days": 7, "daily": "min",
                 "description": "the cluster stays at or above the mesh limit (50 nodes) on 7 consecutive UTC days"}]}]}}
  ],
  "alerts": [
    {"name": "mesh warning", "when": {"any": [{"name": "cp.alert_nodes_warning", "indicator": "cluster_node_count", "comparator": ">=", "threshold": 1, "setting": "mesh_nodes_warning",
        "description": "node count at or above 25"}]}},
    {"name": "mesh limit", "when": {"any": [{"name": "cp.alert_nodes_limit", "indicator": "cluster_node_count", "comparator": ">=", "threshold": 1, "setting": "mesh_nodes_limit",
        "description": "node count at or above 50"}]}},
    {"name": "allocatable memory", "when": {"any": [{"name": "cp.alert_memory", "indicator": "node_allocatable_memory_percent", "comparator": "<", "threshold": 20, "window": "1 hour",
        "description": "less than 20 % allocatable memory left on a node for an hour"}]}},
    {"name": "cpu overcommit", "when": {"any": [{"name": "cp.alert_overcommit", "indicator": "cpu_overcommit_ratio", "comparator": ">", "threshold": 1.5, "window": "1 hour",
        "description": "CPU overcommitted more than 1.5x for an hour"}]}},
    {"name": "standby lag", "when": {"any": [{"name": "cp.alert_standby_lag", "indicator": "replica_lag_seconds", "comparator": ">", "threshold": 30, "window": "15 minutes",
        "description": "standby lag above 30 s for 15 minutes"}]}},
    {"name": "projection lag", "when": {"any": [{"name": "cp.alert_projection_lag", "indicator": "projection_lag_seconds", "comparator": ">", "threshold": 5, "window": "15 minutes",
        "description": "projection lag above 5 s for 15 minutes"}]}}
  ]
}
$doc$::jsonb);

-- tenant-archetypes: tenants placed in size bands A-E (settings), an
-- archetype x tier grid of what each needs (data, answered per tenant by
-- capacity_plan_grid), and the connection-pool budget: the pools' sizes
-- against max_connections less the reserved ones (capacity_pool_budget),
-- a warning at 80 % and a breach at 100 %.
INSERT INTO @extschema@.capacity_plan_preset (name, doc) VALUES ('tenant-archetypes', $doc$
{
  "format": 1,
  "name": "tenant-archetypes",
  "description": "Tenant archetypes A-E by size band, the archetype x tier grid answered per tenant (capacity_plan_grid), and the connection-pool budget (warning at 80 %, breach at 100 %).",
  "settings": {
    "archetype_a_max_rows": {"value": 100000,    "unit": "rows", "description": "Largest tenant of archetype A (starter)"},
    "archetype_b_max_rows": {"value": 1000000,   "unit": "rows", "description": "Largest tenant of archetype B (team)"},
    "archetype_c_max_rows": {"value": 10000000,  "unit": "rows", "description": "Largest tenant of archetype C (business)"},
    "archetype_d_max_rows": {"value": 100000000, "unit": "rows", "description": "Largest tenant of archetype D (enterprise); larger is E"}
  },
  "indicators": {
    "tenant_rows":         {"unit": "rows", "description": "Rows a tenant owns across the hot tables, labels {tenant}"},
    "pool_budget_percent": {"unit": "percent", "description": "Sum of pool sizes over max_connections less reserved (push SELECT capacity_record('pool_budget_percent', percent) FROM capacity_pool_budget())"}
  },
  "guardrails": [
    {"name": "pool budget", "description": "The pools together never promise more connections than the server has.",
     "when": {"any": [{"name": "ta.pool_budget_breach", "indicator": "pool_budget_percent", "comparator": ">=", "threshold": 100,
                       "description": "pool sizes add up to 100 % or more of max_connections less reserved"}]}}
  ],
  "alerts": [
    {"name": "pool budget warning",
     "when": {"any": [{"name": "ta.pool_budget_warning", "indicator": "pool_budget_percent", "comparator": ">=", "threshold": 80,
                       "description": "pool sizes add up to 80 % or more of the connection budget"}]}}
  ],
  "grid": {
    "measure": "tenant_rows",
    "archetypes": [
      {"name": "A", "up_to": "archetype_a_max_rows"},
      {"name": "B", "up_to": "archetype_b_max_rows"},
      {"name": "C", "up_to": "archetype_c_max_rows"},
      {"name": "D", "up_to": "archetype_d_max_rows"},
      {"name": "E"}
    ],
    "columns": ["shared pool", "partitioned tables", "read replica", "dedicated pool", "dedicated database"],
    "cells": {
      "A": {"shared pool": "required",    "partitioned tables": "optional",    "read replica": "n.a.",        "dedicated pool": "n.a.",        "dedicated database": "n.a."},
      "B": {"shared pool": "required",    "partitioned tables": "recommended", "read replica": "optional",    "dedicated pool": "n.a.",        "dedicated database": "n.a."},
      "C": {"shared pool": "recommended", "partitioned tables": "required",    "read replica": "recommended", "dedicated pool": "optional",    "dedicated database": "n.a."},
      "D": {"shared pool": "n.a.",        "partitioned tables": "required",    "read replica": "required",    "dedicated pool": "required",    "dedicated database": "recommended"},
      "E": {"shared pool": "n.a.",        "partitioned tables": "required",    "read replica": "required",    "dedicated pool": "required",    "dedicated database": "required"}
    }
  }
}
$doc$::jsonb);

-- 80_dump.sql: capacity_plan has shipped rows like the other catalog tables
UPDATE @extschema@.capacity_plan SET shipped = true;

CREATE OR REPLACE FUNCTION @extschema@.capacity_removed_default_apply()
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
                  WHEN 'capacity_plan' THEN 'name'
              END;
    IF keycol IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: "%" is not a catalog table with shipped rows', NEW.table_name
            USING ERRCODE = '22023',
                  HINT = 'capacity_removed_default records rows deleted from capacity_stage_def, capacity_setting, capacity_table_binding, capacity_indicator, capacity_trigger or capacity_plan.';
    END IF;
    EXECUTE format('DELETE FROM %I.%I t WHERE t.%I::text = $1 AND t.shipped', TG_TABLE_SCHEMA, NEW.table_name, keycol)
      USING NEW.key;
    RETURN NULL;
END
$$;

CREATE TRIGGER capacity_shipped_row_edited BEFORE UPDATE ON @extschema@.capacity_plan
    FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_shipped_row_edited();
CREATE TRIGGER capacity_shipped_row_replace BEFORE INSERT ON @extschema@.capacity_plan
    FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_shipped_row_replace('name');
CREATE TRIGGER capacity_shipped_row_removed AFTER DELETE ON @extschema@.capacity_plan
    FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_shipped_row_removed('name');

-- Plans (1.1): the shipped matter-six-stage row as above (choosing another
-- plan edits it, so it is dumped); imported plans, their steps and
-- conditions, and the tier history are the user's.  Registered after
-- capacity_latest_sample, in the order the 1.0 -> 1.1 update registers them.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan_step', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan_condition', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan_tier_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan_tier_history_id_seq', '');

-- grants (in the pieces that define them): the new signatures and objects
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_stage(timestamptz, interval, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_decide_at(text, text, timestamptz, jsonb, text, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_decide(text, text, timestamptz, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_stage(timestamptz, interval, text) TO pg_monitor;
GRANT SELECT ON @extschema@.capacity_stages TO pg_monitor;
-- plans (1.1)
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_resolved(jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_eval(timestamptz, jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_resolve(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_stage(timestamptz, jsonb, interval, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_eval(timestamptz, jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_export(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_import(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_install(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_use(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_set_tier(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_check_condition(jsonb, text, text[], text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_rule_groups(jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_grid(text, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_pool_budget() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_trigger_resolved(jsonb, text),
                          @extschema@.capacity_trigger_eval(timestamptz, jsonb, text),
                          @extschema@.capacity_plan_resolve(text),
                          @extschema@.capacity_plan_stage(timestamptz, jsonb, interval, text),
                          @extschema@.capacity_plan_eval(timestamptz, jsonb, text),
                          @extschema@.capacity_plan_export(text),
                          @extschema@.capacity_plan_grid(text, timestamptz),
                          @extschema@.capacity_pool_budget() TO pg_monitor;
GRANT SELECT ON @extschema@.capacity_plans TO pg_monitor;

-- ======== history import, tenant and statement shares, deleted rows ========
-- Issue 14 (branch wip/F): measurements the presets need.  Every object
-- below is created as src/sql/33_measures.sql creates it; the note column
-- and the view as src/sql/30_indicators.sql defines them.

-- Why an indicator wrote nothing (30_indicators.sql): a column at the end.
ALTER TABLE @extschema@.capacity_indicator_run ADD COLUMN note text;
CREATE OR REPLACE VIEW @extschema@.capacity_indicator_status AS
SELECT i.name AS indicator, i.source, i.unit, i.enabled, i.owner,
       r.last_run, r.last_ok, r.samples AS last_samples, r.last_error, r.last_error_at,
       (SELECT pg_catalog.max(l.sampled_at) FROM @extschema@.capacity_latest_sample l
         WHERE l.indicator = i.name) AS last_sampled_at,
       (SELECT pg_catalog.count(*) FROM @extschema@.capacity_latest_sample l
         WHERE l.indicator = i.name) AS series,
       r.note
  FROM @extschema@.capacity_indicator i
  LEFT JOIN @extschema@.capacity_indicator_run r ON r.indicator = i.name;


-- Each leaf partition's delete count (n_tup_del) at the previous sample,
-- by OID: table_rows_deleted advances by what the leaves gained, as
-- table_rows_inserted does (measures.c).  Rows of relations that no longer
-- exist are removed.
CREATE TABLE @extschema@.capacity_leaf_deletes (
    leaf        oid PRIMARY KEY,
    deleted     double precision NOT NULL,
    observed_at timestamptz NOT NULL
);

-- Each statement's total execution time (pg_stat_statements, this
-- database, top level) at the previous sample: statement_top_share is the
-- share of the time between two samples (measures.c).
CREATE TABLE @extschema@.capacity_statement_time (
    queryid     bigint PRIMARY KEY,
    total_ms    double precision NOT NULL,
    observed_at timestamptz NOT NULL
);

-- shipped rows (80_dump.sql marks the fresh install's)
INSERT INTO @extschema@.capacity_indicator (name, unit, source, description, shipped) VALUES
 ('table_rows_deleted',        'rows',  'builtin', 'Rows deleted from each partitioned table (cumulative counter from the leaves'' n_tup_del; default partitions left out), labels {table}', true),
 ('tenant_top_share',          'ratio', 'builtin', 'Share (0..1) of the rows of the current and previous period written by the largest tenant, from a bounded sample, labels {table}', true),
 ('tenant_top10_share',        'ratio', 'builtin', 'Share (0..1) of those rows written by the ten largest tenants, labels {table}', true),
 ('tenant_top_share_stderr',   'ratio', 'builtin', 'Standard error of tenant_top_share (0 when the window was read whole), labels {table}', true),
 ('tenant_top10_share_stderr', 'ratio', 'builtin', 'Standard error of tenant_top10_share (0 when the window was read whole), labels {table}', true),
 ('tenant_count',              'count', 'builtin', 'Tenants with rows in the current and previous period (exact, or estimated from the sample: seen plus Chao1), labels {table}', true),
 ('tenant_rows_p50',           'rows',  'builtin', 'Median rows per tenant in the current and previous period (tenants seen in the sample), labels {table}', true),
 ('tenant_rows_p99',           'rows',  'builtin', '99th percentile of rows per tenant in the current and previous period (tenants seen), labels {table}', true),
 ('statement_top_share',       'ratio', 'builtin', 'Share (0..1) of execution time between two samples taken by the top statement (pg_stat_statements, top level), labels {queryid}', true);

-- The loader both public forms go through (the array form below, the
-- table form in C: src/import.c, which reads the source as the caller).
-- Not for PUBLIC; it runs as the extension owner.  Validates every
-- element first and loads nothing when one is bad.  what_row names an
-- element in messages ('index' for arrays, 'row' for a table).
--   * raw samples whose UTC day partition the sampler would keep at as_of
--     (matter_capacity.sample_retention_days) go into capacity_sample,
--     and their hours are rolled up from capacity_sample exactly as the
--     sampler does (min, max, avg, last, count); a sample already there
--     with the same indicator, labels and time is skipped (a re-import
--     loads nothing twice);
--   * older samples, within matter_capacity.rollup_retention_days, go into
--     the hourly rollups only (the sampler keeps no raw samples that old);
--     an hour that already has a rollup is left as it is;
--   * capacity_latest_sample takes the newest value of each series when it
--     is newer than the one there;
--   * the daily rollups of the days touched are recomputed
--     (capacity_roll_up_days), so forecasts and sustained triggers work at
--     once.
CREATE OR REPLACE FUNCTION @extschema@.capacity_import_load(p_indicators text[], p_labels jsonb[],
                                                 p_sampled_at timestamptz[], p_values double precision[],
                                                 as_of timestamptz, what_row text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    origin constant timestamptz := '2000-01-01 00:00+00';
    n integer;
    bad record;
    raw_from timestamptz;
    keep_from timestamptz;
    lo timestamptz;
    hi timestamptz;
    raw_lo timestamptz;
    raw_hi timestamptz;
    old_lo timestamptz;
    old_hi timestamptz;
    loaded bigint := 0;
    k bigint;
    max_label integer := coalesce(nullif(current_setting('matter_capacity.max_label_bytes', true), '')::integer, 1024);
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('import samples');
    PERFORM @extschema@.capacity_check_time('capacity_import_samples'::text, as_of);
    n := coalesce(cardinality(p_indicators), 0);
    IF p_indicators IS NULL OR p_sampled_at IS NULL OR p_values IS NULL OR p_labels IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: cannot import samples from NULL arrays'
            USING ERRCODE = '22004', HINT = 'Pass sampled_at and value arrays of the same length.';
    END IF;
    IF cardinality(p_sampled_at) <> n OR cardinality(p_values) <> n OR cardinality(p_labels) <> n THEN
        RAISE EXCEPTION 'matter_capacity: cannot import samples: % times and % values for % samples',
                        cardinality(p_sampled_at), cardinality(p_values), n
            USING ERRCODE = '2202E', HINT = 'sampled_at[i] and value[i] describe sample i: pass arrays of the same length.';
    END IF;

    -- every element checked before anything is written: the first bad one
    -- (by position) is reported
    SELECT u.i, u.ind, u.lab, u.at, u.v,
           CASE WHEN u.ind IS NULL THEN 'null_indicator'
                WHEN NOT EXISTS (SELECT 1 FROM @extschema@.capacity_indicator c WHERE c.name = u.ind) THEN 'unknown'
                WHEN u.lab IS NULL OR jsonb_typeof(u.lab) <> 'object' THEN 'labels'
                WHEN octet_length(u.lab::text) > max_label THEN 'label_bytes'
                WHEN u.at IS NULL THEN 'null_time'
                WHEN NOT isfinite(u.at) THEN 'infinite_time'
                WHEN u.at > as_of THEN 'future'
                WHEN u.v IS NULL THEN 'null_value'
                WHEN u.v = 'NaN'::float8 OR u.v IN ('Infinity'::float8, '-Infinity'::float8) THEN 'not_finite'
           END AS problem
      INTO bad
      FROM unnest(p_indicators, p_labels, p_sampled_at, p_values) WITH ORDINALITY AS u(ind, lab, at, v, i)
     WHERE u.ind IS NULL OR u.lab IS NULL OR jsonb_typeof(u.lab) <> 'object'
        OR octet_length(u.lab::text) > max_label
        OR u.at IS NULL OR NOT isfinite(u.at) OR u.at > as_of
        OR u.v IS NULL OR u.v = 'NaN'::float8 OR u.v IN ('Infinity'::float8, '-Infinity'::float8)
        OR NOT EXISTS (SELECT 1 FROM @extschema@.capacity_indicator c WHERE c.name = u.ind)
     ORDER BY u.i
     LIMIT 1;
    IF bad.problem = 'null_indicator' THEN
        RAISE EXCEPTION 'matter_capacity: cannot import: % % has a NULL indicator', what_row, bad.i
            USING ERRCODE = '22004', DETAIL = 'Nothing was imported.',
                  HINT = 'Every sample names its indicator.';
    ELSIF bad.problem = 'unknown' THEN
        RAISE EXCEPTION 'matter_capacity: cannot import: indicator "%" (% %) does not exist', bad.ind, what_row, bad.i
            USING ERRCODE = '42704', DETAIL = 'Nothing was imported.',
                  HINT = 'Import only indicators listed in capacity_indicator; declare one the application measures with capacity_register_push(indicator, unit) first.';
    ELSIF bad.problem = 'labels' THEN
        RAISE EXCEPTION 'matter_capacity: cannot import: labels of indicator % at % % must be a JSON object', bad.ind, what_row, bad.i
            USING ERRCODE = '22023', DETAIL = 'Nothing was imported.',
                  HINT = 'Pass labels like ''{"table": "\"Event\""}''::jsonb, or ''{}''.';
    ELSIF bad.problem = 'label_bytes' THEN
        -- as capacity_record refuses them: the label set is a key of the
        -- sample indexes and rollups
        RAISE EXCEPTION 'matter_capacity: cannot import: labels of indicator % at % % are % bytes, more than matter_capacity.max_label_bytes (%)',
                        bad.ind, what_row, bad.i, octet_length(bad.lab::text), max_label
            USING ERRCODE = '54000', DETAIL = 'Nothing was imported.',
                  HINT = 'Labels name a series (region, endpoint ...): keep them short; values go in value.';
    ELSIF bad.problem = 'null_time' THEN
        RAISE EXCEPTION 'matter_capacity: cannot import: sampled_at of indicator % at % % is NULL', bad.ind, what_row, bad.i
            USING ERRCODE = '22004', DETAIL = 'Nothing was imported.',
                  HINT = 'Every sample needs the time it was taken.';
    ELSIF bad.problem = 'infinite_time' THEN
        RAISE EXCEPTION 'matter_capacity: cannot import: sampled_at % of indicator % at % % is not a finite time', bad.at, bad.ind, what_row, bad.i
            USING ERRCODE = '22008', DETAIL = 'Nothing was imported.',
                  HINT = 'Every sample needs the time it was taken.';
    ELSIF bad.problem = 'future' THEN
        RAISE EXCEPTION 'matter_capacity: cannot import: sampled_at % of indicator % at % % is later than as_of %', bad.at, bad.ind, what_row, bad.i, as_of
            USING ERRCODE = '22008', DETAIL = 'Nothing was imported.',
                  HINT = 'History is in the past: check the time zone of the exported times (timestamptz), or pass a later as_of.';
    ELSIF bad.problem = 'null_value' THEN
        RAISE EXCEPTION 'matter_capacity: cannot import: value of indicator % at % % (sampled_at %) is NULL', bad.ind, what_row, bad.i, bad.at
            USING ERRCODE = '22004', DETAIL = 'Nothing was imported.',
                  HINT = 'Leave out the samples you do not have; a gap is not a zero.';
    ELSIF bad.problem = 'not_finite' THEN
        RAISE EXCEPTION 'matter_capacity: cannot import: value % of indicator % at % % (sampled_at %) is not a finite number', bad.v, bad.ind, what_row, bad.i, bad.at
            USING ERRCODE = '22023', DETAIL = 'Nothing was imported.',
                  HINT = 'Leave out NaN and infinite values (monitoring systems export them for gaps).';
    END IF;
    IF n = 0 THEN
        RETURN 0;
    END IF;

    -- what the sampler keeps at as_of: raw samples of the day partitions
    -- retention has not dropped, hourly rollups of rollup_retention_days
    raw_from := date_bin('1 day', as_of - make_interval(days =>
                    coalesce(nullif(current_setting('matter_capacity.sample_retention_days', true), '')::int, 35)), origin);
    keep_from := as_of - make_interval(days =>
                    coalesce(nullif(current_setting('matter_capacity.rollup_retention_days', true), '')::int, 730));

    -- one sample per series and time (a later element wins)
    CREATE TEMP TABLE capacity_import_rows ON COMMIT DROP AS
    SELECT DISTINCT ON (u.ind, u.lab, u.at) u.ind, u.lab, u.at, u.v, u.at >= raw_from AS raw
      FROM unnest(p_indicators, p_labels, p_sampled_at, p_values) WITH ORDINALITY AS u(ind, lab, at, v, i)
     WHERE u.at >= keep_from
     ORDER BY u.ind, u.lab, u.at, u.i DESC;
    -- raw: not twice
    DELETE FROM capacity_import_rows r
     WHERE r.raw AND EXISTS (SELECT 1 FROM @extschema@.capacity_sample s
                              WHERE s.indicator = r.ind AND s.labels = r.lab AND s.sampled_at = r.at);
    -- older: an hour rolled up already is left as it is
    DELETE FROM capacity_import_rows r
     WHERE NOT r.raw AND EXISTS (SELECT 1 FROM @extschema@.capacity_sample_hourly h
                                  WHERE h.indicator = r.ind AND h.labels = r.lab
                                    AND h.hour = date_bin('1 hour', r.at, origin));
    SELECT count(*), min(r.at), max(r.at) INTO loaded, lo, hi FROM capacity_import_rows r;
    IF loaded = 0 THEN
        DROP TABLE capacity_import_rows;
        RETURN 0;
    END IF;

    -- every sample through the one write path (capacity_write_samples,
    -- sampler.c): raw samples and the newest value of each series
    PERFORM @extschema@.capacity_write_samples(array_agg(r.ind), array_agg(r.lab), array_agg(r.at), array_agg(r.v))
       FROM capacity_import_rows r;

    -- their hours through the one rollup path (capacity_roll_up_hours,
    -- rollup.c), whole hours.  Older than the raw samples kept: from the
    -- imported samples (no other raw samples are that old), which then go,
    -- as the sampler's retention would have dropped them (before the days
    -- are rolled up: the sampler has no raw samples of those days to take a
    -- p95 of).  Then the hours of raw samples, from all the raw samples of
    -- the hour.
    SELECT min(r.at) FILTER (WHERE r.raw), max(r.at) FILTER (WHERE r.raw),
           min(r.at) FILTER (WHERE NOT r.raw), max(r.at) FILTER (WHERE NOT r.raw)
      INTO raw_lo, raw_hi, old_lo, old_hi FROM capacity_import_rows r;
    IF old_lo IS NOT NULL THEN
        k := @extschema@.capacity_roll_up_hours(old_lo, date_bin('1 hour', old_hi, origin)
                                                        + interval '1 hour' - interval '1 microsecond');
        DELETE FROM @extschema@.capacity_sample s USING capacity_import_rows r
         WHERE NOT r.raw AND s.sampled_at >= old_lo AND s.sampled_at <= old_hi
           AND s.indicator = r.ind AND s.labels = r.lab AND s.sampled_at = r.at;
    END IF;
    IF raw_lo IS NOT NULL THEN
        k := @extschema@.capacity_roll_up_hours(raw_lo, date_bin('1 hour', raw_hi, origin)
                                                        + interval '1 hour' - interval '1 microsecond');
    END IF;

    k := @extschema@.capacity_roll_up_days(lo, hi);
    DROP TABLE capacity_import_rows;
    RETURN loaded;
END
$$;

COMMENT ON FUNCTION @extschema@.capacity_import_load(text[], jsonb[], timestamptz[], double precision[], timestamptz, text) IS
    'Internal (not for PUBLIC): validate every sample, then write them as the sampler does; both capacity_import_samples forms call it. '
    'Arrays of the same length (indicator, labels, sampled_at, value); what_row names an element in messages. Returns the samples loaded.';

-- One series from arrays: sampled_at[i] and value[i] are sample i.
CREATE OR REPLACE FUNCTION @extschema@.capacity_import_samples(indicator text, labels jsonb,
                                                    sampled_at timestamptz[], value double precision[],
                                                    as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF sampled_at IS NULL OR value IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: cannot import samples of indicator % from NULL arrays', indicator
            USING ERRCODE = '22004', HINT = 'Pass sampled_at and value arrays of the same length.';
    END IF;
    RETURN @extschema@.capacity_import_load(
        array_fill(indicator, ARRAY[cardinality(sampled_at)]),
        array_fill(labels, ARRAY[cardinality(sampled_at)]),
        sampled_at, value, as_of, 'index');
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_import_samples(text, jsonb, timestamptz[], double precision[], timestamptz) IS
    'Import one series'' history (sampled_at[i], value[i]) the way the sampler writes it: raw samples, newest value, hourly and daily rollups. '
    'Returns the samples loaded (duplicates and hours already rolled up are skipped). Refuses, loading nothing: an unknown indicator (42704), '
    'NULL elements (22004), NaN or infinite values (22023), labels that are not a JSON object (22023), times after as_of (22008), arrays of different lengths (2202E).';

-- From a table or view with columns indicator, labels, sampled_at, value
-- (a query: make it a view, or a temporary one).  C (src/import.c): the
-- source is read with the caller's rights, the samples written as the
-- extension owner.
CREATE OR REPLACE FUNCTION @extschema@.capacity_import_samples(source regclass, as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_import_samples_from';
COMMENT ON FUNCTION @extschema@.capacity_import_samples(regclass, timestamptz) IS
    'Import history from a table or view (indicator text, labels jsonb, sampled_at timestamptz, value float8), read with the caller''s rights, '
    'the way the sampler writes it; returns the samples loaded. Refuses like the array form, naming the row (ordered by sampled_at, indicator, labels); '
    'a missing column is 42703, no SELECT right 42501.';

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_import_load(text[], jsonb[], timestamptz[], double precision[], timestamptz, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_import_samples(text, jsonb, timestamptz[], double precision[], timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_import_samples(regclass, timestamptz) FROM PUBLIC;

-- ======== the HTML review ========
-- Issue 16 (branch wip/H): the HTML review; every object as
-- src/sql/47_report_html.sql creates it.

-- capacity_report_html(): the capacity review as one self-contained HTML
-- document (inline CSS, inline SVG; nothing fetched).  Every figure comes
-- from the existing evaluation: capacity_plan_stage (the verdict),
-- capacity_trigger_eval (each trigger's value and threshold),
-- capacity_forecast_eval (etas, bands, partition runway), the daily
-- rollups (history) and capacity_decision (the log).

-- Text as HTML character data or a quoted attribute value.
CREATE OR REPLACE FUNCTION @extschema@.capacity_html(t text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT replace(replace(replace(replace(replace(coalesce(t, ''),
           '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;
COMMENT ON FUNCTION @extschema@.capacity_html(text) IS
    'Text escaped for HTML (& < > " and single quote); NULL gives the empty string.';

-- One line chart as inline SVG.  days/vals: the daily series (NULL values
-- are gaps); threshold: drawn as a dashed line; from_at/from_v and eta,
-- eta_lo, eta_hi: the forecast from the current value to the threshold at
-- the eta, with its band (eta_hi NULL: open to the chart's end).
CREATE FUNCTION @extschema@.capacity_svg_chart(days timestamptz[], vals double precision[],
                                               threshold double precision,
                                               from_at timestamptz, from_v double precision,
                                               eta timestamptz, eta_lo timestamptz, eta_hi timestamptz,
                                               x_end timestamptz)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w constant double precision := 560;
    h constant double precision := 170;
    l constant double precision := 62;   -- left margin (axis labels)
    r constant double precision := 12;
    t constant double precision := 10;
    b constant double precision := 24;
    x0 double precision := extract(epoch FROM days[1]);
    x1 double precision := extract(epoch FROM greatest(x_end, days[cardinality(days)]));
    hi double precision;
    lo double precision := 0;
    path text := '';
    pen boolean := false;
    npts integer := 0;
    i integer;
    out text;
    fx text;
    band text;
    dots text := '';
BEGIN
    SELECT greatest(max(v), threshold, from_v) INTO hi FROM unnest(vals) v;
    SELECT least(min(v), threshold, from_v, 0) INTO lo FROM unnest(vals) v;
    IF hi IS NULL OR hi <= lo THEN hi := lo + 1; END IF;
    hi := hi + (hi - lo) * 0.08;
    IF x1 <= x0 THEN x1 := x0 + 86400; END IF;
    out := format('<svg class="chart" width="%s" height="%s" viewBox="0 0 %s %s" role="img">',
                  w, h, w, h)
        || format('<rect x="%s" y="%s" width="%s" height="%s" class="plot"/>', l, t, w - l - r, h - t - b);
    -- y axis: bottom, middle, top
    FOR i IN 0..2 LOOP
        out := out || format('<text x="%s" y="%s" class="ax" text-anchor="end">%s</text>', l - 4,
                             round((h - b - i * (h - t - b) / 2 + 4)::numeric, 1),
                             @extschema@.capacity_html(@extschema@.capacity_fmt(lo + i * (hi - lo) / 2)));
    END LOOP;
    -- x axis: first day, as_of's day, end
    out := out || format('<text x="%s" y="%s" class="ax">%s</text>', l, h - 6, to_char(days[1] AT TIME ZONE 'UTC', 'MM-DD'))
               || format('<text x="%s" y="%s" class="ax" text-anchor="end">%s</text>', w - r, h - 6,
                         to_char(to_timestamp(x1) AT TIME ZONE 'UTC', 'YYYY-MM-DD'));
    -- forecast band and line
    IF eta IS NOT NULL AND from_v IS NOT NULL AND threshold IS NOT NULL THEN
        fx := format('%s,%s', round((l + (extract(epoch FROM from_at) - x0) / (x1 - x0) * (w - l - r))::numeric, 1),
                     round((h - b - (from_v - lo) / (hi - lo) * (h - t - b))::numeric, 1));
        band := fx || ' '
             || format('%s,%s', round((l + (extract(epoch FROM least(coalesce(eta_lo, eta), to_timestamp(x1))) - x0) / (x1 - x0) * (w - l - r))::numeric, 1),
                       round((h - b - (threshold - lo) / (hi - lo) * (h - t - b))::numeric, 1)) || ' '
             || format('%s,%s', round((l + (extract(epoch FROM least(coalesce(eta_hi, to_timestamp(x1)), to_timestamp(x1))) - x0) / (x1 - x0) * (w - l - r))::numeric, 1),
                       round((h - b - (threshold - lo) / (hi - lo) * (h - t - b))::numeric, 1));
        out := out || format('<polygon class="band" points="%s"/>', band)
                   || format('<polyline class="fc" points="%s %s,%s"/>', fx,
                             round((l + (extract(epoch FROM least(eta, to_timestamp(x1))) - x0) / (x1 - x0) * (w - l - r))::numeric, 1),
                             round((h - b - (threshold - lo) / (hi - lo) * (h - t - b))::numeric, 1));
        IF eta <= to_timestamp(x1) THEN
            out := out || format('<line class="eta" x1="%1$s" x2="%1$s" y1="%2$s" y2="%3$s"/><text class="ax eta-l" x="%6$s" y="%4$s" text-anchor="end">eta %5$s</text>',
                                 round((l + (extract(epoch FROM eta) - x0) / (x1 - x0) * (w - l - r))::numeric, 1),
                                 t, h - b, t + 12, to_char(eta AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                                 round((l + (extract(epoch FROM eta) - x0) / (x1 - x0) * (w - l - r) - 3)::numeric, 1));
        END IF;
    END IF;
    -- threshold
    IF threshold IS NOT NULL THEN
        out := out || format('<line class="thr" x1="%s" x2="%s" y1="%s" y2="%3$s"/>', l, w - r,
                             round((h - b - (threshold - lo) / (hi - lo) * (h - t - b))::numeric, 1));
    END IF;
    -- the series: a new subpath after each gap
    FOR i IN 1..coalesce(cardinality(vals), 0) LOOP
        IF vals[i] IS NULL THEN
            pen := false;
        ELSE
            npts := npts + 1;
            path := path || CASE WHEN pen THEN 'L' ELSE 'M' END
                 || round((l + (extract(epoch FROM days[i]) - x0) / (x1 - x0) * (w - l - r))::numeric, 1) || ' '
                 || round((h - b - (vals[i] - lo) / (hi - lo) * (h - t - b))::numeric, 1) || ' ';
            pen := true;
            -- a day with no neighbour is a dot (a path of one point draws nothing)
            IF (i = 1 OR vals[i - 1] IS NULL) AND (i = cardinality(vals) OR vals[i + 1] IS NULL) THEN
                dots := dots || format('<circle class="dot" r="2.5" cx="%s" cy="%s"/>',
                    round((l + (extract(epoch FROM days[i]) - x0) / (x1 - x0) * (w - l - r))::numeric, 1),
                    round((h - b - (vals[i] - lo) / (hi - lo) * (h - t - b))::numeric, 1));
            END IF;
        END IF;
    END LOOP;
    IF npts > 0 THEN
        out := out || format('<path class="series" data-points="%s" d="%s"/>', npts, rtrim(path)) || dots;
    ELSE
        out := out || format('<text x="%s" y="%s" class="ax" text-anchor="middle">no samples in these days</text>',
                             (w + l) / 2, h / 2);
    END IF;
    RETURN out || '</svg>';
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_svg_chart(timestamptz[], double precision[], double precision, timestamptz, double precision, timestamptz, timestamptz, timestamptz, timestamptz) IS
    'An inline SVG line chart of a daily series (NULL values are gaps), its threshold as a dashed line, '
    'and a forecast from (from_at, from_v) to the threshold at eta with the band eta_lo..eta_hi; x runs to x_end.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_report_html(as_of timestamptz DEFAULT now(),
                                                 horizon interval DEFAULT '6 months',
                                                 plan text DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT @extschema@.capacity_report_html_at(as_of, @extschema@.capacity_bindings(), horizon, plan) $$;
COMMENT ON FUNCTION @extschema@.capacity_report_html(timestamptz, interval, text) IS
    'The capacity review as one self-contained HTML document (inline CSS and SVG, nothing fetched): '
    'capacity_report_html(as_of timestamptz DEFAULT now(), horizon interval DEFAULT ''6 months'', plan text DEFAULT NULL). '
    'Verdict from capacity_stage(as_of, horizon, plan); triggers, values and thresholds from capacity_trigger_eval; '
    '30-day charts from capacity_sample_daily (else capacity_sample_hourly) with the threshold and the capacity_forecast eta and band; '
    'partition runway from capacity_forecast; decisions from capacity_decision up to as_of. Every value from data is HTML-escaped.';

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report_html(timestamptz, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_report_html(timestamptz, interval, text) TO pg_monitor;

-- ======== functions several changes rewrote: their final text ========
-- Functions more than one change of 1.1 rewrote (the conversion procedures:
-- the switch under load, derived names, growth counting, running as the
-- table's owner; capacity_record: standby refusal and label limits): their
-- final text once, as in src/sql.

CREATE OR REPLACE PROCEDURE @extschema@.capacity_convert(tbl regclass, time_column name, granularity text,
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
    state text;
    leftover_bound boolean;
    leftover_copy regclass;
    cleanup text[];
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM @extschema@.capacity_require_grants('capacity_convert'::text, ARRAY[
        '@extschema@.capacity_convert_check(regclass, name, text, name, integer, integer, text, interval)',
        '@extschema@.capacity_convert_claim(regclass, text)',
        '@extschema@.capacity_convert_unclaim(regclass)',
        '@extschema@.capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean)',
        '@extschema@.capacity_rollover(regclass, timestamptz, boolean)',
        '@extschema@.capacity_run_as_owner(regclass, text[])',
        '@extschema@.capacity_run_bounded(text[], text)',
        '@extschema@.capacity_run_bounded(text[], text, regclass[])']::regprocedure[],
        ARRAY['@extschema@.capacity_conversion']::regclass[], ARRAY['INSERT']::text[]);
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'matter_capacity: capacity_convert cannot run while the server is in recovery'
            USING ERRCODE = '25006', HINT = 'Run it on the primary.';
    END IF;
    IF dry_run IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: capacity_convert: dry_run must not be NULL'
            USING ERRCODE = '22004', HINT = 'Pass true to read the plan, or omit it (false) to convert.';
    END IF;
    SELECT * INTO d FROM @extschema@.capacity_convert_check(tbl, time_column, granularity, hash_column,
                                                            hash_partitions, premake, retention_action, retention);
    PERFORM @extschema@.capacity_check_time(format('capacity_convert of %s', d.qual), as_of);
    bound := @extschema@.capacity_period_start(as_of, granularity, 1);
    bound_lit := @extschema@.capacity_time_literal(bound, d.time_type);
    bound_label := to_char(bound AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC';
    cname := @extschema@.capacity_derived_name(d.relname::text, 'convert_bound');
    tmpname := @extschema@.capacity_derived_name(d.relname::text, 'converting');
    histname := @extschema@.capacity_derived_name(d.relname::text, 'historical');
    tmpqual := format('%I.%I', d.nspname, tmpname);
    histqual := format('%I.%I', d.nspname, histname);
    -- what a cancelled or killed conversion of this table left behind: its
    -- bound constraint (which refuses every row from the bound on) and its
    -- empty partitioned copy; removed below, once the table is claimed
    SELECT k.oid IS NOT NULL INTO leftover_bound FROM pg_constraint k
     WHERE k.conrelid = tbl AND k.conname = cname AND k.contype = 'c';
    leftover_bound := coalesce(leftover_bound, false);
    SELECT c.oid::regclass INTO leftover_copy FROM pg_class c
     WHERE c.oid = to_regclass(tmpqual) AND c.relkind = 'p' AND NOT c.relispartition AND c.relowner = (SELECT t.relowner FROM pg_class t WHERE t.oid = tbl)
       AND EXISTS (SELECT 1 FROM pg_partitioned_table pt WHERE pt.partrelid = c.oid AND pt.partdefid = to_regclass(format('%I.%I', d.nspname, @extschema@.capacity_derived_name(d.relname::text, 'default'))));
    IF to_regclass(histqual) IS NOT NULL OR (to_regclass(tmpqual) IS NOT NULL AND leftover_copy IS NULL) THEN
        RAISE EXCEPTION 'matter_capacity: % or % already exists', tmpqual, histqual
            USING ERRCODE = '42P07', HINT = 'A previous conversion left it or another object has its name; drop or rename it first.';
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
                               CASE WHEN x.contype IN ('p', 'u') THEN @extschema@.capacity_derived_name(x.conname::text, 'conv') ELSE x.conname END,
                               x.def);
        IF x.contype IN ('p', 'u') THEN
            swap := swap || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, x.conname, @extschema@.capacity_derived_name(x.conname::text, 'historical'))
                         || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, @extschema@.capacity_derived_name(x.conname::text, 'conv'), x.conname);
        END IF;
    END LOOP;
    FOR x IN SELECT i.relname, pg_get_indexdef(ix.indexrelid) AS def FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
              WHERE ix.indrelid = tbl AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = ix.indexrelid)
              ORDER BY i.relname LOOP
        prep := prep || replace(x.def, format('INDEX %I ON %s ', x.relname, d.qual),
                                format('INDEX %I ON %s ', @extschema@.capacity_derived_name(x.relname::text, 'conv'), tmpqual));
        swap := swap || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, x.relname, @extschema@.capacity_derived_name(x.relname::text, 'historical'))
                     || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, @extschema@.capacity_derived_name(x.relname::text, 'conv'), x.relname);
    END LOOP;
    FOR x IN SELECT a.privilege_type, a.is_grantable,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS grantee
               FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = tbl AND a.grantee <> c.relowner LOOP
        prep := prep || format('GRANT %s ON %s TO %s%s', x.privilege_type, tmpqual, x.grantee,
                               CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    -- column privileges too: an application role granted columns only
    -- would lose its access at the swap
    FOR x IN SELECT a.attname, p.privilege_type, p.is_grantable,
                    CASE WHEN p.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(p.grantee)) END AS grantee
               FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped,
                    aclexplode(a.attacl) p
              WHERE c.oid = tbl AND p.grantee <> c.relowner ORDER BY a.attnum, 2, 4 LOOP
        prep := prep || format('GRANT %s (%I) ON %s TO %s%s', x.privilege_type, x.attname, tmpqual, x.grantee,
                               CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    IF obj_description(tbl, 'pg_class') IS NOT NULL THEN
        prep := prep || format('COMMENT ON TABLE %s IS %L', tmpqual, obj_description(tbl, 'pg_class'));
    END IF;
    prep := prep || format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', d.nspname, @extschema@.capacity_derived_name(d.relname::text, 'default'), tmpqual);
    IF d.owner <> current_user THEN
        prep := prep || format('ALTER TABLE %s OWNER TO %I', tmpqual, d.owner)
                     || format('ALTER TABLE %I.%I OWNER TO %I', d.nspname, @extschema@.capacity_derived_name(d.relname::text, 'default'), d.owner);
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
                 || format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L]::pg_catalog.text[])', histqual,
                           format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (MINVALUE) TO (%s)', d.qual, histqual, bound_lit));

    plan := ARRAY[format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NOT NULL AND %I < %s) NOT VALID',
                         d.qual, cname, time_column, time_column, bound_lit),
                  format('ALTER TABLE %s VALIDATE CONSTRAINT %I', d.qual, cname)];
    -- the undo of steps 1 and 3, for a failure, a cancel, or a retry after a kill
    cleanup := ARRAY[format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', d.qual, cname),
                     format('DROP TABLE IF EXISTS %s', tmpqual)];
    IF dry_run THEN
        RAISE NOTICE 'capacity_convert(%): dry run, nothing changed', d.qual;
        IF leftover_bound OR leftover_copy IS NOT NULL THEN
            RAISE NOTICE '0. first removes what an interrupted conversion left: %',
                         concat_ws(', ', CASE WHEN leftover_bound THEN format('constraint %I', cname) END, leftover_copy::text);
        END IF;
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

    CALL @extschema@.capacity_require_commit('capacity_convert');   -- before anything is changed
    PERFORM @extschema@.capacity_convert_claim(tbl, 'capacity_convert');
    IF leftover_bound OR leftover_copy IS NOT NULL THEN
        -- no conversion of this table runs (we hold its claim): these are an
        -- interrupted one's; the copy is empty, so nothing is lost
        IF leftover_copy IS NOT NULL AND @extschema@.capacity_owner_value(tbl, format('SELECT 1 FROM %s LIMIT 1', leftover_copy)) IS NOT NULL THEN
            PERFORM @extschema@.capacity_convert_unclaim(tbl);
            RAISE EXCEPTION 'matter_capacity: % already exists and holds rows', leftover_copy
                USING ERRCODE = '42P07', HINT = 'It is not an interrupted conversion''s empty copy: drop or rename it first.';
        END IF;
        -- named now: once dropped, the copy's regclass prints as a number
        s := concat_ws(', ', CASE WHEN leftover_bound THEN format('constraint %I', cname) END, leftover_copy::text);
        PERFORM @extschema@.capacity_run_bounded(CASE WHEN leftover_copy IS NULL THEN cleanup[1:1]
                                                      WHEN NOT leftover_bound THEN cleanup[2:2] ELSE cleanup END,
                                                 format('removing what an interrupted conversion of %s left', d.qual), ARRAY[tbl]);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        RAISE NOTICE 'capacity_convert: removed what an interrupted conversion of % left: %', d.qual, s;
    END IF;
    -- 1. the bound, enforced from now on; 2. proven for the old rows online
    -- Every statement that reads the user's rows or can evaluate the owner's
    -- code (the bound's validation, the count of bad rows, the ATTACH of the
    -- old table) runs as the table's owner under SECURITY_RESTRICTED_OPERATION
    -- through capacity_run_as_owner (issue 19, kind 3); capacity_run_bounded
    -- still bounds its locks.  Our own catalog rows are written as the caller.
    BEGIN
        PERFORM @extschema@.capacity_run_bounded(
                    ARRAY[format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L]::pg_catalog.text[])', d.qual, plan[1])],
                    format('adding the bound constraint to %s', d.qual), ARRAY[tbl]);
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE;
    END;
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    BEGIN
        PERFORM @extschema@.capacity_run_as_owner(tbl, plan[2:2]);
    EXCEPTION WHEN check_violation THEN
        failed := true;
    WHEN query_canceled OR OTHERS THEN
        -- cancelled (statement_timeout, pg_cancel_backend, Ctrl-C) or failed:
        -- the bound must not stay, it would refuse every row from the bound on
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, s = MESSAGE_TEXT;
        PERFORM @extschema@.capacity_run_bounded(cleanup[1:1], format('removing the bound constraint from %s', d.qual), ARRAY[tbl]);
        COMMIT;
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE EXCEPTION 'matter_capacity: % was not converted: %', d.qual, s
            USING ERRCODE = state, HINT = 'The bound constraint was removed; nothing changed. Run it again.';
    END;
    IF failed THEN
        -- the rows a zero-column SELECT returns, counted as the owner
        bad := @extschema@.capacity_run_as_owner(tbl, ARRAY[format('SELECT FROM %s WHERE NOT (%I IS NOT NULL AND %I < %s)',
                                                                   d.qual, time_column, time_column, bound_lit)]);
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format('ALTER TABLE %s DROP CONSTRAINT %I', d.qual, cname)],
                                                 format('removing the bound constraint from %s', d.qual), ARRAY[tbl]);
        COMMIT;
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
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
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        failed := true;
        GET STACKED DIAGNOSTICS s = MESSAGE_TEXT;
    END;
    IF failed THEN
        PERFORM @extschema@.capacity_run_bounded(cleanup[1:1], format('removing the bound constraint from %s', d.qual), ARRAY[tbl]);
        COMMIT;
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE EXCEPTION 'matter_capacity: the partitioned copy of % could not be prepared: %; nothing was converted', d.qual, s
            USING ERRCODE = '55000', HINT = 'Fix the cause; the dry run (dry_run => true) lists every statement.';
    END IF;
    COMMIT;

    -- 4. the swap, short and bounded
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    -- with the policy and the conversion's row in the same transaction (about
    -- 2 ms more under the lock): a kill after the swap's commit can no longer
    -- leave a partitioned table that nothing manages or backfills
    t0 := clock_timestamp();
    BEGIN
        PERFORM @extschema@.capacity_run_bounded(swap, format('swapping %s for its partitioned copy', d.qual), ARRAY[tbl]);
        -- the table is locked until the commit: what follows waits for no
        -- lock longer than the lock timeout either (a failure undoes the swap)
        PERFORM pg_catalog.set_config('lock_timeout', coalesce(current_setting('matter_capacity.lock_timeout', true), '100ms'), true);
        newrel := to_regclass(d.qual);
        PERFORM @extschema@.capacity_manage(newrel, time_column, granularity, hash_column, hash_partitions,
                                            premake, retention, retention_action, true);
        swap_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        INSERT INTO @extschema@.capacity_conversion
            (table_name, historical, time_column, granularity, hash_column, hash_partitions, bound,
             key_columns, state, converted_at, convert_swap_ms)
        VALUES (newrel, tbl, time_column, granularity, hash_column, hash_partitions, bound,
                d.key_columns, 'converted', clock_timestamp(), swap_ms);
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        failed := true;
        GET STACKED DIAGNOSTICS s = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
    END;
    IF failed THEN
        PERFORM @extschema@.capacity_run_bounded(cleanup, format('removing the bound constraint from %s', d.qual), ARRAY[tbl]);
        COMMIT;
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE EXCEPTION 'matter_capacity: % was not converted: %', d.qual, s
            USING ERRCODE = state, HINT = 'Nothing changed; run it again when the table is less busy.';
    END IF;
    COMMIT;

    -- 5. the periods from the bound on
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM count(*) FROM @extschema@.capacity_rollover(newrel, as_of);
    COMMIT;
    PERFORM @extschema@.capacity_convert_unclaim(tbl);
    RAISE NOTICE 'capacity_convert: % is partitioned; % holds the rows before %; the swap held its lock % ms. Next: CALL capacity_convert_backfill(%::regclass)',
                 d.qual, histqual, bound_label, round(swap_ms::numeric, 1), quote_literal(d.qual);
END
$$;

CREATE OR REPLACE PROCEDURE @extschema@.capacity_convert_backfill(tbl regclass, batch_rows integer DEFAULT 10000,
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
    stagedefault text;
    p timestamptz;
    starts timestamptz[];
    plist timestamptz[];
    gap timestamptz[];
    q timestamptz;
    texpr text;
    pname text;
    pqual text;
    stmt text;
    nblocks bigint;
    per_page float8;
    pages bigint;
    n bigint;
    batches integer := 0;
    made integer;
    remade integer := 0;
    cols text;
    why text;
    swap text[];
    x record;
    t0 timestamptz;
    failed boolean;
    outdated boolean;
    err text;
    blk integer := current_setting('block_size')::integer;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM @extschema@.capacity_require_grants('capacity_convert_backfill'::text, ARRAY[
        '@extschema@.capacity_convert_sync()',
        '@extschema@.capacity_convert_claim(regclass, text)',
        '@extschema@.capacity_convert_unclaim(regclass)',
        '@extschema@.capacity_convert_verify(regclass)',
        '@extschema@.capacity_note_backfill_copies(regclass)',
        '@extschema@.capacity_owner_value(regclass, text)',
        '@extschema@.capacity_period_ddl(regclass, name, text, timestamptz, name, integer)',
        '@extschema@.capacity_run_as_owner(regclass, text[])',
        '@extschema@.capacity_run_bounded(text[], text)',
        '@extschema@.capacity_run_bounded(text[], text, regclass[])']::regprocedure[],
        ARRAY['@extschema@.capacity_conversion', '@extschema@.capacity_conversion']::regclass[], ARRAY['SELECT', 'UPDATE']::text[]);
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'matter_capacity: capacity_convert_backfill cannot run while the server is in recovery'
            USING ERRCODE = '25006', HINT = 'Run it on the primary.';
    END IF;
    CALL @extschema@.capacity_require_commit('capacity_convert_backfill');
    IF batch_rows IS NULL OR batch_rows < 1 THEN
        RAISE EXCEPTION 'matter_capacity: batch_rows % must be a positive number', batch_rows
            USING ERRCODE = '22023', HINT = 'Each batch is one transaction; 10000 rows is typical.';
    END IF;
    IF max_batches < 0 THEN
        RAISE EXCEPTION 'matter_capacity: max_batches % must not be negative', max_batches
            USING ERRCODE = '22023', HINT = 'Pass the number of batches this CALL may run, or NULL (the default) for all of them and the switch.';
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
    -- one backfill of a table at a time (the worker's slice and a manual CALL)
    PERFORM @extschema@.capacity_convert_claim(tbl, 'capacity_convert_backfill');
    SELECT * INTO cv FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl;
    SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), a.atttypid::regtype
      INTO nsp, rel, owner, typ
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = cv.time_column
     WHERE c.oid = tbl;
    qual := format('%I.%I', nsp, rel);
    stagename := @extschema@.capacity_derived_name(rel::text, 'backfill');
    stagequal := format('%I.%I', nsp, stagename);
    stagedefault := format('%I.%I', nsp, @extschema@.capacity_derived_name(stagename::text, 'default'));
    -- the time of a row as the periods count it (UTC)
    texpr := CASE WHEN typ = 'timestamptz'::regtype THEN quote_ident(cv.time_column)
                  ELSE format('(%I::pg_catalog.timestamp AT TIME ZONE ''UTC'')', cv.time_column) END;

    <<attempt>>
    LOOP
        IF cv.state = 'backfilling' THEN
            -- a copy that missed a write (its replay failed) or no longer has
            -- the table's shape (a column, constraint or index changed during
            -- the backfill) could not be switched in: it is made again
            why := coalesce(cv.stale, @extschema@.capacity_convert_drift(tbl, cv.staging));
            IF why IS NOT NULL THEN
                remade := remade + 1;
                IF remade > 3 THEN
                    PERFORM @extschema@.capacity_convert_unclaim(tbl);
                    RAISE EXCEPTION 'matter_capacity: the backfill copy of % went out of date % times in this CALL: %', qual, remade - 1, why
                        USING ERRCODE = '55000',
                              HINT = 'The table''s shape keeps changing; CALL capacity_convert_backfill again after the schema change is done. The historical partition serves every row meanwhile.';
                END IF;
                RAISE NOTICE 'capacity_convert_backfill: the copy of % is out of date (%); making it again', qual, why;
                PERFORM @extschema@.capacity_run_bounded(ARRAY[
                            format('DROP TRIGGER IF EXISTS capacity_convert_sync ON %s', cv.historical::text),
                            format('DROP TRIGGER IF EXISTS capacity_convert_truncate ON %s', cv.historical::text),
                            format('DROP TABLE IF EXISTS %s', cv.staging::text)],
                        format('discarding the out-of-date copy of %s', qual), ARRAY[cv.historical, cv.staging]);
                UPDATE @extschema@.capacity_conversion c
                   SET state = 'converted', staging = NULL, stale = NULL, next_page = 0, rows_copied = 0,
                       updated_at = clock_timestamp()
                 WHERE c.table_name = tbl
                RETURNING * INTO cv;
                COMMIT;
                PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            END IF;
        END IF;

        IF cv.state = 'converted' THEN
            -- a preparation cut short (killed) left its staging table: it is
            -- ours (our name, partitioned, our default partition) and no
            -- trigger feeds it yet, so it is dropped and made again
            IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
                        WHERE c.oid = to_regclass(stagequal) AND NOT c.relispartition
                          AND pt.partdefid = to_regclass(stagedefault)) THEN
                EXECUTE format('DROP TABLE %s', stagequal);
            END IF;
            -- the periods that hold rows, read as the owner; rows outside
            -- the years 1000 to 9998 (a stray 1970 row is a period of its own,
            -- -infinity is none) and rows of periods not made wait in the
            -- default partition, as the rollover keeps them.  (Rows older
            -- than the policy's retention get their periods too, and
            -- retention then retires those periods as the policy says: moving
            -- them back into the table at the switch would hold its lock
            -- for as long, and fire the owner's insert triggers on them.)
            starts := @extschema@.capacity_owner_value(tbl, format(
                          'SELECT pg_catalog.array_agg(DISTINCT @extschema@.capacity_period_start(%s, %L, 0) '
                          'ORDER BY @extschema@.capacity_period_start(%s, %L, 0))::pg_catalog.text FROM ONLY %s '
                          'WHERE %I >= %s AND %I < %s', texpr, cv.granularity, texpr, cv.granularity, cv.historical::text,
                          cv.time_column, @extschema@.capacity_time_literal('1000-01-01 00:00+00'::timestamptz, typ),
                          cv.time_column, @extschema@.capacity_time_literal(cv.bound, typ)))::timestamptz[];
            -- and the periods between them up to the bound, unless a gap is
            -- longer than 32 periods (a stray row years away)
            plist := '{}';
            FOREACH p IN ARRAY coalesce(starts, '{}') || cv.bound LOOP
                IF cardinality(plist) > 0 THEN
                    gap := '{}';
                    q := @extschema@.capacity_period_start(plist[cardinality(plist)], cv.granularity, 1);
                    WHILE q < p AND cardinality(gap) <= 32 LOOP
                        gap := gap || q;
                        q := @extschema@.capacity_period_start(q, cv.granularity, 1);
                    END LOOP;
                    IF q >= p THEN
                        plist := plist || gap;
                    END IF;
                END IF;
                IF p < cv.bound THEN
                    plist := plist || p;
                END IF;
            END LOOP;
            -- constraints, indexes and foreign keys as the parent has them, so the
            -- period tables attach later without building or validating anything
            EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING INDEXES '
                           'INCLUDING CONSTRAINTS INCLUDING STORAGE) PARTITION BY RANGE (%I)', stagequal, qual, cv.time_column);
            FOR x IN SELECT k.conname, pg_get_constraintdef(k.oid) AS def FROM pg_constraint k
                      WHERE k.conrelid = tbl AND k.contype = 'f' LOOP
                EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', stagequal, x.conname, x.def);
            END LOOP;
            EXECUTE format('CREATE TABLE %s PARTITION OF %s DEFAULT', stagedefault, stagequal);
            IF owner <> current_user THEN
                EXECUTE format('ALTER TABLE %s OWNER TO %I', stagequal, owner);
                EXECUTE format('ALTER TABLE %s OWNER TO %I', stagedefault, owner);
            END IF;
            made := 0;
            FOREACH p IN ARRAY plist LOOP
                pname := @extschema@.capacity_partition_name(rel::text, cv.granularity, p);
                pqual := format('%I.%I', nsp, pname);
                -- built as the rollover builds a period (src/partitions.c)
                FOREACH stmt IN ARRAY @extschema@.capacity_period_ddl(tbl, cv.time_column, cv.granularity, p,
                                                                      cv.hash_column, cv.hash_partitions) LOOP
                    EXECUTE stmt;
                END LOOP;
                EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)', stagequal, pqual,
                               @extschema@.capacity_time_literal(p, typ),
                               @extschema@.capacity_time_literal(@extschema@.capacity_period_start(p, cv.granularity, 1), typ));
                IF owner <> current_user THEN
                    FOR x IN SELECT c.oid::regclass AS r FROM pg_partition_tree(pqual::regclass) t JOIN pg_class c ON c.oid = t.relid
                              WHERE c.relkind IN ('r', 'p') LOOP
                        EXECUTE format('ALTER TABLE %s OWNER TO %I', x.r, owner);
                    END LOOP;
                END IF;
                made := made + 1;
                -- many periods (years of days) would outgrow the lock table in
                -- one transaction: the copy is private, so commit as we go
                IF made % 20 = 0 THEN
                    COMMIT;
                    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
                END IF;
            END LOOP;
            UPDATE @extschema@.capacity_conversion c
               SET staging = stagequal::regclass, state = 'backfilling', next_page = 0, rows_copied = 0, stale = NULL,
                   pages_total = pg_relation_size(cv.historical) / blk,
                   backfill_started_at = coalesce(c.backfill_started_at, clock_timestamp()), updated_at = clock_timestamp()
             WHERE c.table_name = tbl;
            -- the write replay, as the owner; TRUNCATE empties the copy too
            PERFORM @extschema@.capacity_run_bounded(ARRAY[
                        format('CREATE TRIGGER capacity_convert_sync AFTER INSERT OR UPDATE OR DELETE ON %s '
                               'FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_convert_sync(%L)',
                               cv.historical::text, stagequal),
                        format('CREATE TRIGGER capacity_convert_truncate AFTER TRUNCATE ON %s '
                               'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.capacity_convert_sync(%L)',
                               cv.historical::text, stagequal)],
                    format('installing the write replay on %s', cv.historical::text), ARRAY[cv.historical]);
            COMMIT;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            SELECT * INTO cv FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl;
            RAISE NOTICE 'capacity_convert_backfill: % periods from % to % prepared; copying % pages of %',
                         (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = cv.staging) - 1,
                         coalesce(to_char(starts[1] AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '-'),
                         to_char(cv.bound AT TIME ZONE 'UTC', 'YYYY-MM-DD'), cv.pages_total, cv.historical;
        END IF;

        -- the columns copied: generated columns are computed by the copy
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_attribute a WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';

        -- batches of pages, one transaction each; the watermark commits with them
        LOOP
            nblocks := pg_relation_size(cv.historical) / blk;
            EXIT WHEN cv.next_page >= nblocks;
            IF max_batches IS NOT NULL AND batches >= max_batches THEN
                PERFORM @extschema@.capacity_convert_unclaim(tbl);
                RAISE NOTICE 'capacity_convert_backfill: stopped after % batches at page % of %; CALL it again to go on',
                             batches, cv.next_page, nblocks;
                RETURN;
            END IF;
            IF cv.stale IS NOT NULL OR @extschema@.capacity_convert_drift(tbl, cv.staging) IS NOT NULL THEN
                CONTINUE attempt;
            END IF;
            SELECT CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN c.reltuples / c.relpages ELSE 100 END
              INTO per_page FROM pg_class c WHERE c.oid = cv.historical;
            pages := greatest(1, ceil(batch_rows / per_page))::bigint;
            n := @extschema@.capacity_run_as_owner(tbl, ARRAY[format(
                     'INSERT INTO %s (%s) SELECT %s FROM ONLY %s WHERE ctid >= %L::tid AND ctid < %L::tid '
                     'FOR SHARE ON CONFLICT DO NOTHING', cv.staging::text, cols, cols, cv.historical::text,
                     format('(%s,0)', cv.next_page), format('(%s,0)', cv.next_page + pages))]);
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
        -- proven by constraints, so the lock is held for catalog work only.
        -- The parent first, under the lock timeout; once it is ours no
        -- application statement holds a partition, so every further lock is
        -- free unless another session holds a partition itself (a long reader
        -- of the historical table, autovacuum): then the attempt ends at once
        -- (10 ms) instead of keeping the application queued behind the parent
        -- for a second timeout.  Under the locks the copy is checked once
        -- more (no write missed, the same shape: nothing to build).
        swap := ARRAY[format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', qual),
                      'SELECT pg_catalog.set_config(''lock_timeout'', ''10ms'', true)',
                      format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', qual),
                      format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', cv.historical::text),
                      format('SELECT @extschema@.capacity_convert_verify(%L::pg_catalog.regclass)', qual),
                      format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L]::pg_catalog.text[])', qual,
                             format('INSERT INTO %s (%s) SELECT %s FROM ONLY %s WHERE ctid >= %L::tid ON CONFLICT DO NOTHING',
                                    cv.staging::text, cols, cols, cv.historical::text, format('(%s,0)', cv.next_page))),
                      format('SELECT @extschema@.capacity_note_backfill_copies(%L::pg_catalog.regclass)', qual),   -- copies are not growth
                      format('ALTER TABLE %s DETACH PARTITION %s', qual, cv.historical::text),
                      format('DROP TRIGGER capacity_convert_sync ON %s', cv.historical::text),
                      format('DROP TRIGGER IF EXISTS capacity_convert_truncate ON %s', cv.historical::text)];
        FOR x IN SELECT i.inhrelid::regclass AS part, pg_get_expr(c.relpartbound, c.oid) AS bnd
                   FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                  WHERE i.inhparent = cv.staging ORDER BY 2 LOOP
            IF x.bnd = 'DEFAULT' THEN
                CONTINUE;
            END IF;
            swap := swap || format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L, %L]::pg_catalog.text[])', qual,
                                   format('ALTER TABLE %s DETACH PARTITION %s', cv.staging::text, x.part),
                                   format('ALTER TABLE %s ATTACH PARTITION %s %s', qual, x.part, x.bnd));
        END LOOP;
        -- rows of no prepared period (written during the backfill, or outside
        -- the years periods are made for) go to the table: its default partition
        swap := swap || format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L]::pg_catalog.text[])', qual,
                               format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s', qual, cols, cols, stagedefault))
                     || format('DROP TABLE %s', cv.staging::text);
        -- Every row is copied and writes are replayed, so a switch that cannot
        -- get its locks loses nothing by waiting: three rounds, a second apart
        -- with nothing held, then a warning and a clean return; the next CALL
        -- (or the worker's next slice) switches.
        outdated := false;
        FOR rnd IN 1 .. 3 LOOP
            failed := false;
            t0 := clock_timestamp();
            BEGIN
                PERFORM @extschema@.capacity_run_bounded(swap, format('switching %s to its backfilled periods', qual),
                                                         ARRAY[tbl, cv.historical, cv.staging]);
            EXCEPTION WHEN lock_not_available THEN
                failed := true;
                GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            WHEN object_not_in_prerequisite_state THEN
                -- capacity_convert_verify: the copy is out of date
                outdated := true;
            END;
            EXIT WHEN NOT failed;
            COMMIT;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            IF rnd < 3 THEN
                PERFORM pg_sleep(1);
            END IF;
        END LOOP;
        IF outdated THEN
            COMMIT;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            SELECT * INTO cv FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl;
            CONTINUE attempt;
        END IF;
        EXIT attempt;
    END LOOP;
    IF failed THEN
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE WARNING 'capacity_convert_backfill: % is copied but not yet switched to its period partitions: %', qual, err
            USING HINT = format('Nothing is lost: %s stays attached and its writes are replayed into the copy. '
                                'CALL capacity_convert_backfill(%L) again when the table is less busy '
                                '(the background worker retries on its own); pg_locks shows who holds it.',
                                cv.historical, qual);
        RETURN;
    END IF;
    UPDATE @extschema@.capacity_conversion c
       SET state = 'done', staging = NULL, finished_at = clock_timestamp(), updated_at = clock_timestamp(),
           backfill_swap_ms = extract(epoch FROM clock_timestamp() - t0) * 1000
     WHERE c.table_name = tbl
    RETURNING * INTO cv;
    COMMIT;
    PERFORM @extschema@.capacity_convert_unclaim(tbl);
    RAISE NOTICE 'capacity_convert_backfill: % done: % rows in period partitions; the switch held its lock % ms. The old table % is detached: drop it once checked.',
                 qual, cv.rows_copied, round(cv.backfill_swap_ms::numeric, 1), cv.historical;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.capacity_record(indicator text, value double precision,
                                            labels jsonb DEFAULT '{}',
                                            sampled_at timestamptz DEFAULT now())
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text;
    origin constant timestamptz := '2000-01-01 00:00+00';
    late_hour timestamptz;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('record a value');
    IF indicator IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: indicator must not be NULL'
            USING ERRCODE = '22004', HINT = 'Name an indicator declared with capacity_register_push(indicator, unit).';
    END IF;
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
    IF octet_length(labels::text)
       > coalesce(nullif(current_setting('matter_capacity.max_label_bytes', true), '')::integer, 1024) THEN
        RAISE EXCEPTION 'matter_capacity: labels for indicator % are % bytes, more than matter_capacity.max_label_bytes (%)',
                        indicator, octet_length(labels::text),
                        coalesce(nullif(current_setting('matter_capacity.max_label_bytes', true), '')::integer, 1024)
            USING ERRCODE = '54000',
                  HINT = 'Labels name a series (region, endpoint ...): keep them short; values go in value.';
    END IF;
    IF sampled_at IS NULL OR NOT isfinite(sampled_at)
       OR sampled_at < '1000-01-01 00:00+00' OR sampled_at >= '9999-01-01 00:00+00' THEN
        RAISE EXCEPTION 'matter_capacity: sampled_at % for indicator % must be a finite time in the years 1000 to 9998',
                        sampled_at, indicator
            USING ERRCODE = '22008', HINT = 'Omit it to use now().';
    END IF;
    -- An hour whose rollup counts more samples than its raw samples left
    -- (history imported or kept longer than the raw retention): re-rolling
    -- it from the raw samples would replace that rollup by this one value
    -- (review: a late push wiped an imported hour).
    late_hour := date_bin('1 hour', sampled_at, origin);
    IF EXISTS (SELECT 1 FROM @extschema@.capacity_sample_hourly h
                WHERE h.indicator = capacity_record.indicator AND h.labels = capacity_record.labels
                  AND h.hour = late_hour
                  AND h.count > (SELECT count(*) FROM @extschema@.capacity_sample s
                                  WHERE s.indicator = capacity_record.indicator AND s.labels = capacity_record.labels
                                    AND s.sampled_at >= late_hour AND s.sampled_at < late_hour + interval '1 hour')) THEN
        RAISE EXCEPTION 'matter_capacity: the raw samples of indicator % in the hour of % are gone (older than the raw retention): recording % would replace that hour''s rollup',
                        indicator, sampled_at, value
            USING ERRCODE = '55000',
                  HINT = 'History that old is loaded with capacity_import_samples(); nothing was recorded.';
    END IF;
    PERFORM @extschema@.capacity_write_sample(indicator, labels, sampled_at, value);
    -- A late value: a sampling rolls up only the hours since the previous
    -- one, at most two hours back (rollup.c), so a value older than the
    -- hour of the latest sampling (not later than now), or than two hours,
    -- is rolled up here
    -- through the same rollup (capacity_roll_up_hours: every series of
    -- that one hour), and its UTC day (capacity_roll_up_days).  A value
    -- pushed on time costs nothing more; bulk history goes through
    -- capacity_import_samples.  So is a value of an hour or a day already
    -- rolled up for its series, even one after now() (future-dated test or
    -- import data): a stale rollup made the N-day verdict of the series
    -- depend on whether another series had a raw sample that day (review L6).
    IF late_hour < date_bin('1 hour', now() - interval '2 hours', origin)
       OR late_hour < (SELECT date_bin('1 hour', least(max(r.last_run), now()), origin)
                         FROM @extschema@.capacity_indicator_run r)
       OR EXISTS (SELECT 1 FROM @extschema@.capacity_sample_hourly h
                   WHERE h.indicator = capacity_record.indicator AND h.labels = capacity_record.labels AND h.hour = late_hour)
       OR EXISTS (SELECT 1 FROM @extschema@.capacity_sample_daily d
                   WHERE d.indicator = capacity_record.indicator AND d.labels = capacity_record.labels
                     AND d.day = date_bin('1 day', sampled_at, origin)) THEN
        PERFORM @extschema@.capacity_roll_up_hours(late_hour, late_hour + interval '1 hour' - interval '1 microsecond');
        PERFORM @extschema@.capacity_roll_up_days(sampled_at, sampled_at);
    END IF;
END
$$;


-- ======== the conversion's first read as the table owner ========
-- Leftovers of issue 19 (kind 3), after the rewritten procedures:
--   60_convert.sql: capacity_owner_value (the backfill's first read of the
--   historical partition, as the table's owner)
CREATE OR REPLACE FUNCTION @extschema@.capacity_owner_value(tbl regclass, query text)
RETURNS text
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_owner_value';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_owner_value(regclass, text) FROM PUBLIC;

-- ======== one of each: the indicator-name rule, the comparator ========
-- The indicator-name rule lives in C (capacity_check_indicator_name, src/probes.c),
-- used by the table's CHECK and capacity_register_push; a trigger's comparator
-- is read in one place, capacity_breaches.  Mirrors 30, 31 and 41.

CREATE OR REPLACE FUNCTION @extschema@.capacity_check_indicator_name(name text)
RETURNS boolean
LANGUAGE c IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_check_indicator_name';
COMMENT ON FUNCTION @extschema@.capacity_check_indicator_name(text) IS
    'true when name is a valid indicator name (a lower-case letter, then lower-case letters, digits and _, at most 63 bytes); else error 42602 naming it.';

ALTER TABLE @extschema@.capacity_indicator DROP CONSTRAINT capacity_indicator_name_check,
    ADD CONSTRAINT capacity_indicator_name_check CHECK (@extschema@.capacity_check_indicator_name(name));



CREATE OR REPLACE FUNCTION @extschema@.capacity_breaches(value double precision, comparator text,
                                              threshold double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN value OPERATOR(pg_catalog.=) 'NaN'::pg_catalog.float8
                 OR threshold OPERATOR(pg_catalog.=) 'NaN'::pg_catalog.float8 THEN NULL
            WHEN comparator OPERATOR(pg_catalog.=) '>' THEN value OPERATOR(pg_catalog.>) threshold
            WHEN comparator OPERATOR(pg_catalog.=) '>=' THEN value OPERATOR(pg_catalog.>=) threshold
            WHEN comparator OPERATOR(pg_catalog.=) '<' THEN value OPERATOR(pg_catalog.<) threshold
            WHEN comparator OPERATOR(pg_catalog.=) '<=' THEN value OPERATOR(pg_catalog.<=) threshold END
$$;
COMMENT ON FUNCTION @extschema@.capacity_breaches(double precision, text, double precision) IS
    'value compared with threshold by comparator (>, >=, < or <=): whether a trigger''s condition holds; NULL (unknown) '
    'for another comparator or a NaN value or threshold (PostgreSQL sorts NaN above every number, which read as a breach). '
    'Kept one SQL expression so that it is inlined into the stage evaluation''s aggregates.';



-- ======== one partition engine: builder, policy checks, bounded locks ========
-- The conversion builds its periods with the rollover's builder
-- (capacity_period_ddl, src/partitions.c), checks its policy with
-- capacity_manage's validator (capacity_check_policy, src/manage.c) and
-- bounds its locks with locks.c's loop (capacity_run_bounded is C now);
-- explain's period bounds are the rollover's (capacity_period_start).
-- Mirrors 10_partitions.sql, 50_explain.sql and 60_convert.sql.

CREATE OR REPLACE FUNCTION @extschema@.capacity_check_policy(tbl regclass, time_column name, granularity text,
                                                  hash_column name, hash_partitions integer, premake integer,
                                                  retention interval, retention_action text)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT STABLE
AS 'MODULE_PATHNAME', 'capacity_check_policy';
COMMENT ON FUNCTION @extschema@.capacity_check_policy IS
    'Raises what capacity_manage would refuse in these policy arguments for tbl (granularity, hash column and count, premake and leaf limit, retention, retention_action); changes nothing.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_period_ddl(tbl regclass, time_column name, granularity text,
                                                period_start timestamptz, hash_column name,
                                                hash_partitions integer)
RETURNS text[]
LANGUAGE c CALLED ON NULL INPUT STABLE
AS 'MODULE_PATHNAME', 'capacity_period_ddl';
COMMENT ON FUNCTION @extschema@.capacity_period_ddl IS
    'CREATE statements for the standalone table of the period of tbl containing period_start (and its hash leaves), named and shaped as the rollover makes them; to be attached by the caller.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_period_ddl(regclass, name, text, timestamptz, name, integer) FROM PUBLIC;

COMMENT ON FUNCTION @extschema@.capacity_run_bounded(text[], text, regclass[]) IS
    'Run statements under matter_capacity.lock_timeout, retried matter_capacity.lock_retries times (src/locks.c); returns the attempts; 55P03 when the locks stay unavailable.';

DROP FUNCTION @extschema@.capacity_convert_check(regclass, name, text, name, integer, integer, text);
CREATE OR REPLACE FUNCTION @extschema@.capacity_convert_check(tbl regclass, time_column name, granularity text,
                                                   hash_column name, hash_partitions integer, premake integer,
                                                   retention_action text, retention interval)
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
        -- named without its schema: pg_temp_N differs from session to session
        RAISE EXCEPTION 'matter_capacity: % is a temporary table', quote_ident(r.relname)
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
    SELECT a.attnum, a.atttypid::regtype INTO tatt, time_type
      FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = time_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF tatt IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: column "%" of % does not exist', time_column, qual
            USING ERRCODE = '42703', HINT = 'Name the column that holds the row''s time, e.g. "createdAt".';
    ELSIF time_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'matter_capacity: column "%" of % is %, not a date or timestamp', time_column, qual, time_type
            USING ERRCODE = '42804', HINT = 'Partition by a timestamptz, timestamp or date column.';
    END IF;
    -- the policy's own checks, as capacity_manage makes them (src/manage.c)
    PERFORM @extschema@.capacity_check_policy(tbl, time_column, granularity, hash_column, hash_partitions,
                                              premake, retention, retention_action);
    IF hash_column IS NOT NULL THEN
        SELECT a.attnum INTO hatt FROM pg_attribute a
         WHERE a.attrelid = tbl AND a.attname = hash_column AND a.attnum > 0 AND NOT a.attisdropped;
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
    bad := @extschema@.capacity_publications_of(ARRAY[tbl]);
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

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_convert_check(regclass, name, text, name, integer, integer, text, interval) FROM PUBLIC;

COMMENT ON PROCEDURE @extschema@.capacity_convert IS
    'Turn an ordinary table into a managed partitioned table of the same name online; the old rows stay in a historical partition until capacity_convert_backfill.';

COMMENT ON PROCEDURE @extschema@.capacity_convert_backfill IS
    'Move the historical partition left by capacity_convert into period partitions, a batch per transaction; resumable; progress in capacity_conversions.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_explain_expand(params text[], tbl regclass, as_of timestamptz)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH parts AS (
        SELECT t.range_from, t.range_to FROM @extschema@.capacity_partition_tree(tbl) t
         WHERE t.level = 1 AND NOT t.is_default
    ), cur AS (
        SELECT p.granularity AS gran,
               coalesce((SELECT range_from FROM parts WHERE range_from <= as_of AND range_to > as_of),
                        @extschema@.capacity_period_start(as_of, p.granularity)) AS s,
               coalesce((SELECT range_to FROM parts WHERE range_from <= as_of AND range_to > as_of),
                        @extschema@.capacity_period_start(as_of, p.granularity, 1)) AS e
          FROM @extschema@.capacity_policy p WHERE p.table_name = tbl
    ), g AS (
        SELECT s, e, coalesce((SELECT range_to FROM parts WHERE range_from = e),
                              @extschema@.capacity_period_start(e, gran, 1)) AS e2
          FROM cur
    )
    SELECT CASE WHEN params IS NULL THEN NULL ELSE ARRAY(
        SELECT CASE v
                 WHEN '@period_start@' THEN (SELECT s FROM g)::text
                 WHEN '@period_end@' THEN (SELECT e FROM g)::text
                 WHEN '@mid_period@' THEN (SELECT s + (e - s) / 2 FROM g)::text
                 WHEN '@mid_next_period@' THEN (SELECT e + (e2 - e) / 2 FROM g)::text
                 ELSE v END
          FROM unnest(params) WITH ORDINALITY AS u(v, i) ORDER BY i) END
$$;


-- ======== one write path for a sample, one rollup path ========
-- capacity_record and capacity_explain_run write through the sampler's
-- write_samples (capacity_write_sample, src/sampler.c); the import rolls
-- its hours up with the sampler's own rollup (capacity_roll_up_hours, C)
-- and its days with capacity_roll_up_days, as the sampler does.  Mirrors
-- 31_indicator_functions.sql, 33_measures.sql and 50_explain.sql.

CREATE OR REPLACE FUNCTION @extschema@.capacity_write_sample(indicator text, labels jsonb, sampled_at timestamptz,
                                                  value double precision)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_write_sample';
COMMENT ON FUNCTION @extschema@.capacity_write_sample IS
    'Internal (not for PUBLIC): write one sample and keep the newest value of its series, as the sampler writes (src/sampler.c); no checks.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_write_sample(text, jsonb, timestamptz, double precision) FROM PUBLIC;



CREATE OR REPLACE FUNCTION @extschema@.capacity_roll_up_hours(from_ts timestamptz, to_ts timestamptz)
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_roll_up_hours';
COMMENT ON FUNCTION @extschema@.capacity_roll_up_hours IS
    'Recompute the hourly rollups of the hours from_ts .. to_ts touches from the raw samples up to to_ts, as the sampler does (the daily ones: capacity_roll_up_days); returns the rollups written.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_roll_up_hours(timestamptz, timestamptz) FROM PUBLIC;


COMMENT ON FUNCTION @extschema@.capacity_import_load(text[], jsonb[], timestamptz[], double precision[], timestamptz, text) IS
    'Internal (not for PUBLIC): validate every sample, then write them as the sampler does; both capacity_import_samples forms call it. '
    'Arrays of the same length (indicator, labels, sampled_at, value); what_row names an element in messages. Returns the samples loaded.';



-- ======== each piece in dependency order, with its own grants ========
-- The grants moved into the pieces that define their objects and the pieces
-- were put in dependency order (70_drop_cleanup.sql, 42_explain.sql,
-- 45_stage.sql, 46_report.sql, 46_stage_actions.sql): only a comment in a
-- function body changes.


-- ======== the fleet registry: members, their checks ========
-- New in 1.1 (issue 15): 48_fleet.sql (registry part)
CREATE TABLE @extschema@.capacity_fleet_member (
    name      text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    kind      text NOT NULL CHECK (kind IN ('replica', 'tier', 'region', 'pooler')),
    server    name,                        -- postgres_fdw foreign server (replica/tier/region)
    conninfo  text,                        -- pooler only; never holds a password (password file)
    labels    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    added_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'pooler') = (conninfo IS NOT NULL)),
    CHECK ((kind = 'pooler') = (server IS NULL))
);
COMMENT ON TABLE @extschema@.capacity_fleet_member IS
    'Fleet members watched by the hub.  name is the member label of their samples; server is a postgres_fdw '
    'foreign server (credentials in its user mapping), conninfo a PgBouncer admin console (no password: password file). '
    'labels: tier {"tenants": [...]}, region {"region": "eu"}, pooler optionally {"role_of_pool": {...}}.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_fleet_member', '');

CREATE OR REPLACE FUNCTION @extschema@.capacity_fleet_check(name text, kind text, target text)
RETURNS jsonb
LANGUAGE c STRICT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_fleet_check';
COMMENT ON FUNCTION @extschema@.capacity_fleet_check(text, text, text) IS
    'Connects to a prospective member within matter_capacity.fleet_timeout and raises if it cannot be one '
    '(unknown server 42704, no user mapping 42704, unreachable 08001, this very database 42P17, '
    'a pooler that is not PgBouncer 42809, a password in a pooler conninfo 22023).  Returns its version and role.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_fleet_add(name text, kind text, target text, labels jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    other text;
BEGIN
    -- first: any later error would write the statement, password and all, to the server log
    PERFORM @extschema@.capacity_fleet_check_target(name, kind, target);
    -- the poll connects with the extension owner's user mappings: only that
    -- role (or a superuser) registers what it will connect to
    IF NOT pg_catalog.has_table_privilege('@extschema@.capacity_fleet_member', 'SELECT, INSERT')
       OR NOT pg_catalog.has_function_privilege('@extschema@.capacity_fleet_check(text, text, text)', 'EXECUTE') THEN
        RAISE EXCEPTION 'matter_capacity: role % may not register fleet members: capacity_fleet_add also needs SELECT and INSERT on capacity_fleet_member and EXECUTE on capacity_fleet_check', current_user
            USING ERRCODE = '42501',
                  HINT = 'Register members as the extension owner: the poll connects to them with its user mappings, '
                         'so granting this lets a role choose servers the owner connects to.';
    END IF;
    PERFORM @extschema@.capacity_refuse_in_recovery('register a fleet member');
    IF name IS NULL OR name !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
        -- hostile input is not echoed in full: 63 characters at most
        RAISE EXCEPTION 'matter_capacity: fleet member name % is not valid',
            coalesce(quote_literal(CASE WHEN length(name) > 63 THEN left(name, 63) || '…' ELSE name END), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use 1 to 63 letters, digits, _ . or -: it becomes the member label of samples.';
    END IF;
    IF kind IS NULL OR kind NOT IN ('replica', 'tier', 'region', 'pooler') THEN
        RAISE EXCEPTION 'matter_capacity: fleet member "%" has unknown kind %', name,
            coalesce(quote_literal(CASE WHEN length(kind) > 63 THEN left(kind, 63) || '…' ELSE kind END), 'NULL')
            USING ERRCODE = '22023', HINT = 'kind is one of replica, tier, region, pooler.';
    END IF;
    IF target IS NULL OR target = '' THEN
        RAISE EXCEPTION 'matter_capacity: fleet member "%" needs a target', name
            USING ERRCODE = '22023',
                  HINT = CASE WHEN kind = 'pooler' THEN 'Pass the PgBouncer admin conninfo, e.g. ''host=/run/pgbouncer port=6432 user=stats''.'
                              ELSE 'Pass the name of a postgres_fdw foreign server.' END;
    END IF;
    IF labels IS NULL OR jsonb_typeof(labels) <> 'object' THEN
        RAISE EXCEPTION 'matter_capacity: labels of fleet member "%" must be a JSON object', name
            USING ERRCODE = '22023', HINT = 'Pass ''{}'' or e.g. ''{"region": "eu"}''.';
    END IF;
    IF kind = 'region' AND jsonb_typeof(labels->'region') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'matter_capacity: region member "%" needs labels {"region": "..."}', name
            USING ERRCODE = '22023', HINT = 'The region name is compared with the pushed values'' region label, e.g. ''{"region": "eu"}''.';
    END IF;
    IF kind = 'tier' AND jsonb_typeof(labels->'tenants') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'matter_capacity: tier member "%" needs labels {"tenants": [...]}', name
            USING ERRCODE = '22023', HINT = 'List the tenants the tier serves, e.g. ''{"tenants": ["acme"]}''.';
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.capacity_fleet_member m WHERE m.name = capacity_fleet_add.name) THEN
        RAISE EXCEPTION 'matter_capacity: fleet member "%" already exists', name
            USING ERRCODE = '42710', HINT = 'Remove it first with capacity_fleet_remove(name).';
    END IF;
    -- one server, one member: two names would count its series twice
    SELECT m.name INTO other FROM @extschema@.capacity_fleet_member m
     WHERE capacity_fleet_add.kind <> 'pooler' AND m.server::text = target;
    IF FOUND THEN
        RAISE EXCEPTION 'matter_capacity: foreign server "%" is already fleet member "%"', target, other
            USING ERRCODE = '42710', HINT = 'One member per server: its samples would be counted twice.  Use that member, or remove it first.';
    END IF;
    -- raises when the member cannot be one; nothing is registered then
    PERFORM @extschema@.capacity_fleet_check(name, kind, target);
    INSERT INTO @extschema@.capacity_fleet_member (name, kind, server, conninfo, labels)
    VALUES (name, kind,
            CASE WHEN kind <> 'pooler' THEN target END,
            CASE WHEN kind = 'pooler' THEN target END,
            labels);
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_fleet_add(text, text, text, jsonb) IS
    'Registers a fleet member after connecting to it (within matter_capacity.fleet_timeout).  kind: replica | tier | '
    'region | pooler; target: a postgres_fdw foreign server name (credentials in its user mapping for the extension '
    'owner), or for a pooler a PgBouncer admin conninfo without password.  labels: region {"region": ...}, tier '
    '{"tenants": [...]}.  Errors (nothing registered): 22023 bad name/kind/labels, 42710 exists, and those of capacity_fleet_check.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_fleet_remove(name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    moves   text;
    tenants text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('remove a fleet member');
    IF name IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: capacity_fleet_remove needs a member name, not NULL'
            USING ERRCODE = '22004', HINT = 'SELECT name FROM capacity_fleet_member lists the members.';
    END IF;
    -- serialise with a concurrent registration or move of this member
    PERFORM 1 FROM @extschema@.capacity_fleet_member m WHERE m.name = capacity_fleet_remove.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'matter_capacity: fleet member "%" does not exist',
            CASE WHEN length(name) > 63 THEN left(name, 63) || '…' ELSE name END
            USING ERRCODE = '42704', HINT = 'SELECT name FROM capacity_fleet_member lists the members.';
    END IF;
    -- a move's abort and cleanup need the member; a tenant living there is
    -- recorded against it
    SELECT string_agg(format('%s (%s)', t.tenant, t.state), ', ' ORDER BY t.tenant) INTO moves
      FROM @extschema@.capacity_tenant_move t
     WHERE t.member = capacity_fleet_remove.name AND t.state <> 'cleaned';
    SELECT string_agg(t.tenant, ', ' ORDER BY t.tenant) INTO tenants
      FROM @extschema@.capacity_tenant_tier t
     WHERE t.member = capacity_fleet_remove.name;
    IF moves IS NOT NULL OR tenants IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: fleet member "%" is in use: %', name,
            concat_ws('; ', 'tenant moves to it: ' || moves, 'tenants living on it: ' || tenants)
            USING ERRCODE = '55000',
                  HINT = 'Finish (capacity_tenant_move_cutover, capacity_tenant_move_cleanup) or abort (capacity_tenant_move_abort) '
                         'the moves first; tenants cut over to it are recorded in capacity_tenant_tier and live there.';
    END IF;
    DELETE FROM @extschema@.capacity_fleet_member m WHERE m.name = capacity_fleet_remove.name;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_fleet_remove(text) IS
    'Forgets a fleet member (its recorded samples stay).  42704 if there is none of that name.  '
    'The foreign server and user mapping are left to the DBA.';

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_fleet_check(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_fleet_add(text, text, text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_fleet_remove(text) FROM PUBLIC;


-- ======== the fleet view: members polled concurrently, their indicators ========
-- New in 1.1 (issue 15): 48_fleet.sql (capacity_fleet_poll, capacity_fleet, fleet indicators)

-- What the fleet sampling records besides the hub's own indicators (which
-- it also records per member, labels {member}).
INSERT INTO @extschema@.capacity_indicator (name, unit, source, description, shipped) VALUES
 ('fleet_member_up',      'bool',    'builtin', 'Fleet member answered within matter_capacity.fleet_timeout (1) or not (0), labels {member}', true),
 ('fleet_rtt_ms',         'ms',      'builtin', 'Round trip of the fleet poll statement to a member, labels {member}', true),
 ('pool_clients_waiting', 'count',   'builtin', 'PgBouncer clients waiting for a server connection (cl_waiting), labels {member, pool, database, user}', true),
 ('pool_maxwait_seconds', 'seconds', 'builtin', 'PgBouncer: age of the oldest waiting client (maxwait + maxwait_us), labels {member, pool, database, user}', true);

-- One row per member, polled now; SECURITY DEFINER so that the owner's
-- user mappings are used whoever reads the view (they never see them).
CREATE OR REPLACE FUNCTION @extschema@.capacity_fleet_poll(
    member text DEFAULT NULL,
    OUT name text, OUT kind text, OUT labels jsonb, OUT reachable boolean, OUT error text,
    OUT polled_at timestamptz, OUT connect_ms double precision, OUT rtt_ms double precision,
    OUT server_version text, OUT role text, OUT stage integer, OUT recommended_stage integer,
    OUT decision text, OUT read_qps double precision, OUT write_qps double precision,
    OUT read_p99_ms double precision, OUT write_p99_ms double precision,
    OUT cpu_utilization double precision, OUT member_sampled_at timestamptz,
    OUT replica_lag_seconds double precision, OUT connections integer,
    OUT connections_utilization double precision, OUT pool_utilization double precision,
    OUT pool_clients_waiting integer, OUT pool_maxwait_seconds double precision,
    OUT pools jsonb, OUT database_bytes bigint, OUT largest_tables jsonb)
RETURNS SETOF record
LANGUAGE c CALLED ON NULL INPUT VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'capacity_fleet_poll';
COMMENT ON FUNCTION @extschema@.capacity_fleet_poll(text) IS
    'Polls every fleet member (or just the one named by member) concurrently, each within matter_capacity.fleet_timeout, as the extension owner; '
    'an unreachable or slow member is a row with reachable false and error set; a member not registered is 42704.  Read it through capacity_fleet.';

CREATE VIEW @extschema@.capacity_fleet AS
SELECT p.name, p.kind, p.labels, p.reachable, p.error,
       CASE WHEN p.reachable THEN p.polled_at
            ELSE (SELECT l.sampled_at FROM @extschema@.capacity_latest_sample l
                   WHERE l.indicator = 'fleet_rtt_ms' AND l.labels = jsonb_build_object('member', p.name)) END AS last_seen,
       p.rtt_ms, p.connect_ms, p.server_version, p.role, p.stage, p.recommended_stage, p.decision,
       p.read_qps, p.write_qps, p.read_p99_ms, p.write_p99_ms, p.cpu_utilization,
       p.replica_lag_seconds, p.connections, p.connections_utilization,
       p.pool_utilization, p.pool_clients_waiting, p.pool_maxwait_seconds, p.pools,
       p.database_bytes, p.largest_tables,
       p.polled_at AS live_figures_at,
       p.member_sampled_at AS member_figures_at
  FROM @extschema@.capacity_fleet_poll(NULL) p;
COMMENT ON VIEW @extschema@.capacity_fleet IS
    'One row per fleet member, polled now (concurrently, each within matter_capacity.fleet_timeout): reachable, '
    'last_seen, round trip, version, primary/standby/pooler, its own stage and decision and newest read/write QPS, p99 '
    'and CPU where it runs matter_capacity (as of member_figures_at), replica lag, connections, PgBouncer pools '
    '(utilisation % = (sv_active+sv_used+sv_tested+sv_login)/pool_size), database bytes, largest tables (live, as of '
    'live_figures_at).  Never an error for an unreachable member.  docs/fleet.md.';

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_fleet_poll(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_fleet_poll(text) TO pg_monitor;
GRANT SELECT ON @extschema@.capacity_fleet TO pg_monitor;

-- ======== the indicator-name rule in plan documents too ========
-- Plan documents check indicator names with the same C rule
-- (capacity_indicator_name_valid).  Mirrors 30_indicators.sql and 45_plans.sql.

CREATE OR REPLACE FUNCTION @extschema@.capacity_indicator_name_valid(name text)
RETURNS boolean
LANGUAGE c IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_indicator_name_valid';
COMMENT ON FUNCTION @extschema@.capacity_indicator_name_valid(text) IS
    'Whether name is a valid indicator name (the rule of capacity_check_indicator_name), without raising; false for NULL.';

COMMENT ON FUNCTION @extschema@.capacity_plan_import(jsonb) IS
    'Load a plan document (docs/plans.md) and return its name. Every field is checked before anything changes; '
    'a bad one is refused naming its path, e.g. $.tiers[2].enter.any[0].comparator: 22023 bad value or shape, '
    '42704 unknown indicator, setting, table or tier, 42710 duplicate name, 42P17 a ladder that branches or cycles, 22004 a NULL document. '
    'An installed plan of the same name is replaced (and stays active if it was). Settings: missing ones are created; '
    'one with another value keeps it (NOTICE) unless the document says "replace": true and the caller may call '
    'capacity_set_threshold (else 42501).';
-- ======== tenant moves: a tenant to a tier member by logical replication, verified before cutover ========

-- Tenant moves (stage 4 carried out): a tenant's rows move to a dedicated
-- cluster, a `tier` fleet member, with PostgreSQL's logical replication
-- (a publication with a row filter on the tenant column here, a
-- subscription there), verified before cutover.  The C side is
-- src/tenant_move.c; the runbook is docs/runbooks/tenant-tier-migration.md.

CREATE TABLE @extschema@.capacity_tenant_move (
    tenant      text PRIMARY KEY,
    member      text NOT NULL,                 -- capacity_fleet_member.name (kind tier)
    name        name NOT NULL UNIQUE,          -- publication, subscription and slot: mc_move_<md5(tenant)>_<md5(member)>
    state       text NOT NULL CHECK (state IN ('syncing', 'frozen', 'cut over', 'cleaned', 'failed')),
    reason      text,                          -- why it failed
    started_at  timestamptz NOT NULL DEFAULT now(),
    frozen_at   timestamptz,
    cutover_at  timestamptz,
    cleaned_at  timestamptz
);
COMMENT ON TABLE @extschema@.capacity_tenant_move IS
    'One row per tenant move in progress or done; written by capacity_tenant_move*() only.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_tenant_move', '');

CREATE TABLE @extschema@.capacity_tenant_move_table (
    tenant          text NOT NULL REFERENCES @extschema@.capacity_tenant_move ON DELETE CASCADE,
    table_name      regclass NOT NULL,
    tenant_column   name NOT NULL,
    source_rows     bigint,                    -- the last verification
    target_rows     bigint,
    source_checksum text,
    target_checksum text,
    equal           boolean,
    verified_at     timestamptz,
    PRIMARY KEY (tenant, table_name)
);
COMMENT ON TABLE @extschema@.capacity_tenant_move_table IS
    'The tables of each move, their tenant column and their last verification.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_tenant_move_table', '');

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

CREATE OR REPLACE FUNCTION @extschema@.capacity_tenant_move(tenant text, target text, tables regclass[] DEFAULT NULL,
                                                source_conninfo text DEFAULT NULL)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move(text, text, regclass[], text) IS
    'Start moving a tenant to fleet member target (kind tier): tables default to every managed table with a tenant '
    '(hash) column.  Checks here (the tenant has rows, else P0002; a replica identity covering the tenant column 55000) '
    'and on the member (table 42P01, columns 42703 and types 42804, primary key or identity 55000, no rows of the tenant 55000); '
    'then a publication with a row filter on the tenant column (publish_via_partition_root), the subscription on the member '
    '(its initial copy is PostgreSQL''s), and a guard trigger per table.  source_conninfo: how the member reaches this '
    'database, without password (default: this server''s socket, database and role).  Call it in its own transaction (25001).';

CREATE OR REPLACE FUNCTION @extschema@.capacity_tenant_move_verify(tenant text)
RETURNS TABLE(table_name regclass, source_rows bigint, target_rows bigint,
              source_checksum text, target_checksum text, equal boolean)
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move_verify';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_verify(text) IS
    'Per table, count and checksum (sum of md5 of the row text) of the tenant''s rows here and on the member at one '
    'consistent point while the application writes: the tenant''s writes pause (bounded by lock_timeout, then by '
    'tenant_move_timeout for the member to confirm the WAL position), both snapshots are taken, writes resume, then the '
    'counting runs.  55000 while the initial copy is not finished.  Recorded as the move''s last verification.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_tenant_move_freeze(tenant text)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move_freeze';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_freeze(text) IS
    'Refuse the tenant''s writes here from now on (SQLSTATE 25006 with a hint naming the member); waits at most '
    'lock_timeout x (lock_retries + 1) for the tenant''s writes in flight.  Other tenants are not affected.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_tenant_move_cutover(tenant text)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move_cutover';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_cutover(text) IS
    'For a frozen move: waits (tenant_move_timeout) for lag zero, verifies counts and checksums (XX001 and stays frozen '
    'if they differ), records the tenant in capacity_tenant_tier and in the member''s labels.tenants, drops the '
    'subscription and the publication.  Routing the application is the application''s.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_tenant_move_abort(tenant text)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move_abort';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_abort(text) IS
    'Undo a move before cutover: drops the subscription and deletes the tenant''s copied rows on the member, drops the '
    'guard triggers (bounded by lock_timeout) and the publication here; the tenant''s rows here were never touched.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_tenant_move_cleanup(tenant text, batch_rows integer DEFAULT 10000)
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move_cleanup';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_cleanup(text, integer) IS
    'After cutover only, when asked: deletes up to batch_rows of the tenant''s rows per table here, each batch under '
    'lock_timeout; returns the rows deleted.  Call it (one transaction each) until it returns 0: the move is then cleaned.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_tenant_move_guard()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'capacity_tenant_move_guard';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_guard() IS
    'BEFORE ROW trigger (tenant column, tenant) added by capacity_tenant_move: on the tenant''s rows only, lets '
    'verification pause them, and refuses them (25006) once frozen.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_tenant_move_status()
RETURNS TABLE(tenant text, member text, table_name regclass, sync_state text, lag_bytes bigint,
              source_rows bigint, target_rows bigint, verified_at timestamptz, verified_equal boolean,
              verified_source_rows bigint, verified_target_rows bigint, state text, reason text, note text)
LANGUAGE c STRICT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move_status';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_status() IS
    'The rows of capacity_tenant_moves; a member that cannot be reached within fleet_timeout gives NULLs and a note.';

CREATE VIEW @extschema@.capacity_tenant_moves AS
    SELECT * FROM @extschema@.capacity_tenant_move_status();
COMMENT ON VIEW @extschema@.capacity_tenant_moves IS
    'Per move and table: initial sync state on the member (init, copying, copied, synchronized, ready), lag_bytes of '
    'the subscription''s slot here, the tenant''s rows on each side now, the last verification, and the state: '
    'syncing, verifying (copy done, ready to verify and freeze), frozen, cut over, cleaned, failed (with reason).';

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move(text, text, regclass[], text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_verify(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_freeze(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_cutover(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_abort(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_cleanup(text, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_status() FROM PUBLIC;
-- CREATE TRIGGER checks EXECUTE; only capacity_tenant_move adds the guard
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_guard() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_status() TO pg_monitor;
GRANT SELECT ON @extschema@.capacity_tenant_moves, @extschema@.capacity_tenant_tier TO pg_monitor;

-- ======== stage 4's evidence reads the tier registry (tenant moves) ========

CREATE OR REPLACE FUNCTION @extschema@.capacity_stage_eval(as_of timestamptz, bindings jsonb,
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
    PERFORM @extschema@.capacity_check_time('capacity_stage'::text, as_of, horizon, true);
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
             'horizon_end', as_of + horizon,
             -- stage 4 carried out: the tenants moved to their tier (capacity_tenant_move_cutover)
             'tenant_tiers', (SELECT coalesce(jsonb_object_agg(t.tenant, jsonb_build_object(
                                  'tier', t.tier, 'member', t.member, 'moved_at', t.moved_at)), '{}')
                                FROM @extschema@.capacity_tenant_tier t))
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

-- ======== review: plans forecast and are checked like the ladder; the review of any plan; the HTML charts; late values; clear errors ========
-- 31_indicator_functions.sql: capacity_record re-rolls a late value's hour and day
-- 33_measures.sql: the import applies max_label_bytes
COMMENT ON FUNCTION @extschema@.capacity_import_load(text[], jsonb[], timestamptz[], double precision[], timestamptz, text) IS
    'Internal (not for PUBLIC): validate every sample, then write them as the sampler does; both capacity_import_samples forms call it. '
    'Arrays of the same length (indicator, labels, sampled_at, value); what_row names an element in messages. Returns the samples loaded.';
-- 43_report.sql: sparklines and numbers at the limits of float8
CREATE OR REPLACE FUNCTION @extschema@.capacity_sparkline(vals double precision[], hi double precision)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF hi IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)
       OR EXISTS (SELECT 1 FROM unnest(vals) v WHERE v IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)) THEN
        RAISE EXCEPTION 'matter_capacity: capacity_sparkline draws finite numbers only'
            USING ERRCODE = '22023', DETAIL = format('hi = %s; values %s', hi, vals),
                  HINT = 'Leave a value without data NULL (it draws as a blank).';
    END IF;
    RETURN (SELECT coalesce(string_agg(CASE WHEN v IS NULL THEN ' '
                                            -- hi 0 or NULL: no scale, nothing drawn (as in 1.0)
                                            WHEN hi IS NULL OR hi = 0 THEN NULL
                                            ELSE substr('▁▂▃▄▅▆▇█', 1 + CASE WHEN hi < 0 OR v <= 0 THEN 0
                                                                            WHEN v >= hi THEN 7
                                                                            ELSE least(7, floor(v / hi * 8)::int) END, 1) END,
                                       '' ORDER BY i), '')
              FROM unnest(vals) WITH ORDINALITY AS u(v, i));
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_sparkline(double precision[], double precision) IS
    'Eight-level sparkline (one character per value, NULL a blank) of vals scaled from 0 to hi; '
    'values beyond the range draw as the lowest or highest bar. Errors: 22023 NaN or infinite value or hi.';
CREATE OR REPLACE FUNCTION @extschema@.capacity_fmt(v double precision)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN v IS NULL THEN ''
                WHEN v IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) OR abs(v) >= 1e15 THEN v::text
                WHEN abs(v) >= 100 THEN round(v::numeric)::text
                ELSE rtrim(rtrim(round(v::numeric, CASE WHEN abs(v) >= 1 THEN 2 ELSE 6 END)::text, '0'), '.') END
$$;
-- 44_forecast.sql: the forecast of any plan's conditions; the ladder's is a wrapper
CREATE OR REPLACE FUNCTION @extschema@.capacity_plan_forecast_eval(as_of timestamptz, horizon interval, bindings jsonb,
                                                        evals @extschema@.capacity_trigger_row[],
                                                        min_stage integer, plan_name text,
                                                        only_conditions text[] DEFAULT NULL)
RETURNS SETOF @extschema@.capacity_forecast_row
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan   -- one plan per session: see capacity_trigger_eval
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
    PERFORM @extschema@.capacity_check_time('capacity_forecast'::text, as_of, horizon, true);
    today := date_bin('1 day', as_of, origin);
    first_day := today - make_interval(days => lookback);

    SELECT array_agg(DISTINCT t.indicator),
           array_agg(DISTINCT t.indicator) FILTER (WHERE t.aggregate = 'growth')
      INTO inds, counters
      FROM @extschema@.capacity_trigger_resolved(bindings, plan_name) t
     WHERE t.indicator IS NOT NULL AND (min_stage IS NULL OR t.stage >= min_stage)
       AND (only_conditions IS NULL OR t.name = ANY (only_conditions));
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
      FROM @extschema@.capacity_trigger_resolved(bindings, plan_name) t
     WHERE t.indicator IS NOT NULL AND (min_stage IS NULL OR t.stage >= min_stage)
       AND (only_conditions IS NULL OR t.name = ANY (only_conditions))
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
           d.max, d.min, d.last, d.avg
      FROM series x JOIN trig t ON t.name = x.name
      JOIN days d ON d.indicator = t.indicator AND d.labels = x.labels
     WHERE t.aggregate IN ('all', 'latest', 'days')
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
                -- N consecutive days: the day's aggregate the condition compares
                WHEN t.aggregate = 'days' THEN
                     CASE t.daily WHEN 'max' THEN d.max WHEN 'p95' THEN d.max WHEN 'min' THEN d.min ELSE d.avg END
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
    -- row counts, where the counts are stale or too few: the current count
    -- less the rows inserted since each day (retention is not seen)
    SELECT c.name, c.labels, 'inserts',
           extract(epoch FROM c.at - as_of)::float8 / 86400,
           r.value - (max(c.cum) OVER (PARTITION BY c.name, c.labels) - c.cum)
      FROM counter_sums c JOIN rows_now r ON r.name = c.name AND r.labels = c.labels
    UNION ALL
    -- row counts: the counts themselves, i.e. the net change (inserts less
    -- deletes and retention)
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
stale AS (   -- row counts not refreshed: unmoved through the last three days, sampled
             -- more than once a day, while the insert counter rose
    SELECT x.name, x.labels
      FROM series x JOIN trig t ON t.name = x.name AND t.rowcount
      JOIN days r ON r.indicator = 'table_rows' AND r.labels = x.labels AND r.day >= today - interval '3 days'
      JOIN days c ON c.indicator = 'table_rows_inserted' AND c.labels = x.labels AND c.day = r.day
     GROUP BY x.name, x.labels
    HAVING count(*) = 3 AND min(r.count) >= 2 AND min(r.min) = max(r.max) AND min(r.min) > 0
       AND max(c.max) > min(c.min)
),
basis AS (   -- row counts: their net change, unless they are stale or too few;
             -- then the current count moved back by the inserts
    SELECT DISTINCT ON (p.name, p.labels) p.name, p.labels, p.basis
      FROM points p
      LEFT JOIN stale s ON s.name = p.name AND s.labels = p.labels
     GROUP BY p.name, p.labels, p.basis, s.name
     ORDER BY p.name, p.labels, count(*) >= 7 DESC, (p.basis = 'inserts') = (s.name IS NOT NULL) DESC
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
           CASE WHEN t.aggregate = 'growth' THEN t.sustain / 2
                -- N consecutive days fire N days after the crossing
                WHEN t.aggregate = 'days' THEN t.sustain ELSE interval '0' END AS lag_by,
           EXISTS (SELECT 1 FROM stale z WHERE z.name = t.name AND z.labels = e.labels) AS stale,
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
                CASE d.basis WHEN 'inserts' THEN
                                  CASE WHEN d.stale THEN 'current rows + insert trend: the row counts did not move while rows were inserted'
                                       ELSE 'current rows + insert trend: too few row counts' END
                             WHEN 'rows' THEN 'row counts: the net change'
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
 WHERE min_stage IS NULL AND plan_name IS NULL
 ORDER BY 1 NULLS LAST, 2, 4;
END
$fn$;
COMMENT ON FUNCTION @extschema@.capacity_plan_forecast_eval(timestamptz, interval, jsonb, @extschema@.capacity_trigger_row[], integer, text, text[]) IS
    'The forecast of capacity_forecast() for the six-stage ladder (plan_name NULL) or an installed plan''s conditions: '
    'per condition and series, the trend, eta and band (conditions over N days: the crossing plus N days). Internal.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_forecast_eval(timestamptz, interval, jsonb, @extschema@.capacity_trigger_row[], integer, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_plan_forecast_eval(timestamptz, interval, jsonb, @extschema@.capacity_trigger_row[], integer, text, text[]) TO pg_monitor;
-- 45_plans.sql: guardrails lacking data do not hold the verdict; documents bounded
COMMENT ON FUNCTION @extschema@.capacity_plan_import(jsonb) IS
    'Load a plan document (docs/plans.md) and return its name. Every field is checked before anything changes; '
    'a bad one is refused naming its path, e.g. $.tiers[2].enter.any[0].comparator: 22023 bad value or shape, '
    '42704 unknown indicator, setting, table or tier, 42710 duplicate name, 42P17 a ladder that branches or cycles, 22004 a NULL document. '
    'An installed plan of the same name is replaced (and stays active if it was). Settings: missing ones are created; '
    'one with another value keeps it (NOTICE) unless the document says "replace": true and the caller may call '
    'capacity_set_threshold (else 42501).';
-- 41_stage_functions.sql: forecasts (plan) and contradictions for any plan
COMMENT ON FUNCTION @extschema@.capacity_stage IS
    'Where the database stands on a plan (plan: an installed plan''s name; NULL: the active one, matter-six-stage after install): '
    'whether a trigger says to move (promote), move back (rollback, plans with exit rules) or will within the horizon (plan), and the evidence. '
    'Error 42704 for a plan that is not installed.';
-- 42_stage_actions.sql: capacity_decide says which grants it lacks
COMMENT ON FUNCTION @extschema@.capacity_decide IS
    'Record the review''s decision (stay, promote, rollback) with the evaluation and evidence of as_of for a plan '
    '(NULL: the active one) and evidence_refs, the paths or run ids of the artifacts it rests on. '
    'Errors: 22023 unknown decision, 42704 plan not installed, 22004 NULL or empty reference, '
    '42501 the role lacks EXECUTE on capacity_decide_at or SELECT on capacity_table_binding (grant pg_monitor and both functions: '
    'capacity_decide resolves the hot tables as the caller, capacity_decide_at records).';
-- 43_report.sql: the text review of any plan
CREATE OR REPLACE FUNCTION @extschema@.capacity_report_at(as_of timestamptz, bindings jsonb,
                                               horizon interval, plan_name text)
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
    p text := @extschema@.capacity_plan_resolve(plan_name);
    pn text;   -- the plan's name for the evaluation functions; NULL: the ladder
BEGIN
    PERFORM @extschema@.capacity_check_time('capacity_report'::text, as_of, horizon, true);
    pn := CASE WHEN p = 'matter-six-stage' THEN NULL ELSE p END;
    SELECT * INTO s FROM @extschema@.capacity_plan_stage(as_of, bindings, horizon, p);
    RETURN NEXT format('Capacity review at %s UTC', to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'));
    IF pn IS NULL THEN
        RETURN NEXT format('Stage %s (%s); recommended %s (%s): %s',
                           s.current_stage, s.current_name, s.recommended_stage, s.recommended_name,
                           upper(s.decision));
    ELSE
        RETURN NEXT format('Plan %s: tier %s (%s); recommended %s (%s): %s', p,
                           coalesce(s.current_name, '-'), s.current_stage,
                           coalesce(s.recommended_name, '-'), s.recommended_stage, upper(s.decision));
    END IF;
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
    evals := ARRAY(SELECT e FROM @extschema@.capacity_trigger_eval(as_of, bindings, pn) e);
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
    FOR r IN SELECT f.* FROM @extschema@.capacity_plan_forecast_eval(as_of, horizon, bindings,
                  evals, NULL::integer, pn) f
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
COMMENT ON FUNCTION @extschema@.capacity_report_at(timestamptz, jsonb, interval, text) IS
    'Internal: capacity_report(as_of, horizon, plan) with the hot tables resolved by the caller.';
CREATE OR REPLACE FUNCTION @extschema@.capacity_report_at(as_of timestamptz, bindings jsonb,
                                               horizon interval DEFAULT '6 months')
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM @extschema@.capacity_report_at(as_of, bindings, horizon, NULL::text) $$;
CREATE OR REPLACE FUNCTION @extschema@.capacity_report(as_of timestamptz DEFAULT now(),
                                            horizon interval DEFAULT '6 months')
RETURNS SETOF text
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.capacity_report_at(as_of, @extschema@.capacity_bindings(), horizon, NULL::text) $$;
COMMENT ON FUNCTION @extschema@.capacity_report(timestamptz, interval) IS
    'The weekly capacity review of the active plan as text: verdict, triggers with 30-day sparklines, forecasts, runway, decisions.';
CREATE OR REPLACE FUNCTION @extschema@.capacity_report(as_of timestamptz, horizon interval, plan text)
RETURNS SETOF text
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.capacity_report_at(as_of, @extschema@.capacity_bindings(), horizon, plan) $$;
COMMENT ON FUNCTION @extschema@.capacity_report(timestamptz, interval, text) IS
    'The weekly capacity review of a plan as text (plan: an installed plan; NULL: the active one), as capacity_stage(plan => ...) '
    'evaluates it: verdict, the plan''s triggers or conditions with 30-day sparklines and forecasts, runway, decisions. Error 42704: plan not installed.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report_at(timestamptz, jsonb, interval, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report(timestamptz, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_report_at(timestamptz, jsonb, interval, text),
                          @extschema@.capacity_report(timestamptz, interval, text) TO pg_monitor;
-- 47_report_html.sql: 90 days, forecasts as fitted, workload, tables, EXPLAIN checks, timeline
DROP FUNCTION @extschema@.capacity_svg_chart(timestamptz[], double precision[], double precision, timestamptz, double precision, timestamptz, timestamptz, timestamptz, timestamptz);
CREATE OR REPLACE FUNCTION @extschema@.capacity_svg_chart(days timestamptz[], vals double precision[],
                                               threshold double precision DEFAULT NULL,
                                               fc_at timestamptz[] DEFAULT NULL, fc_v double precision[] DEFAULT NULL,
                                               band_at timestamptz[] DEFAULT NULL, band_v double precision[] DEFAULT NULL,
                                               eta timestamptz DEFAULT NULL, x_end timestamptz DEFAULT NULL,
                                               more double precision[] DEFAULT NULL, more_names text[] DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w constant double precision := 560;
    h constant double precision := 170;
    l constant double precision := 62;   -- left margin (axis labels)
    r constant double precision := 12;
    t constant double precision := 10;
    b constant double precision := 24;
    x0 double precision;
    x1 double precision;
    hi2 double precision;                -- the range in half-values
    lo2 double precision;
    allv double precision[];
    nser integer := 1;
    k integer;
    i integer;
    v double precision;
    path text;
    pen boolean;
    npts integer;
    out text;
    pts text;
    dots text;
    nm text;
BEGIN
    IF days IS NULL OR cardinality(days) = 0 OR cardinality(vals) IS DISTINCT FROM cardinality(days) THEN
        RAISE EXCEPTION 'matter_capacity: capacity_svg_chart needs one value per day (% days, % values)',
                        coalesce(cardinality(days), 0), coalesce(cardinality(vals), 0)
            USING ERRCODE = '2202E', HINT = 'Build both arrays from the same days; a day without data is a NULL value.';
    END IF;
    IF more IS NOT NULL AND cardinality(more) > 0 THEN
        IF array_ndims(more) <> 2 OR array_length(more, 2) <> cardinality(days) THEN
            RAISE EXCEPTION 'matter_capacity: capacity_svg_chart: more must hold one row of % values per series', cardinality(days)
                USING ERRCODE = '2202E', HINT = 'ARRAY[[...], [...]]: each row a series over the same days.';
        END IF;
        nser := 1 + array_length(more, 1);
    END IF;
    IF cardinality(fc_at) IS DISTINCT FROM cardinality(fc_v) OR cardinality(band_at) IS DISTINCT FROM cardinality(band_v) THEN
        RAISE EXCEPTION 'matter_capacity: capacity_svg_chart: the forecast and band need one value per time'
            USING ERRCODE = '2202E', HINT = 'Pass fc_at with fc_v and band_at with band_v of the same lengths.';
    END IF;
    allv := vals || ARRAY(SELECT unnest(more)) || coalesce(fc_v, '{}') || coalesce(band_v, '{}') || threshold;
    IF EXISTS (SELECT 1 FROM unnest(allv) x WHERE x IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)) THEN
        RAISE EXCEPTION 'matter_capacity: capacity_svg_chart draws finite numbers only'
            USING ERRCODE = '22023', HINT = 'A day without data is a NULL value (a gap); NaN and infinities are not data.';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(days || coalesce(fc_at, '{}') || coalesce(band_at, '{}') || eta || x_end) x
                WHERE NOT isfinite(x)) THEN
        RAISE EXCEPTION 'matter_capacity: capacity_svg_chart draws finite times only'
            USING ERRCODE = '22008', HINT = 'Leave eta or x_end NULL when there is none.';
    END IF;
    x0 := extract(epoch FROM days[1]);
    x1 := extract(epoch FROM greatest(x_end, days[cardinality(days)]));
    IF x1 <= x0 THEN x1 := x0 + 86400; END IF;
    SELECT max(x / 2), least(min(x / 2), 0) INTO hi2, lo2 FROM unnest(allv) x;
    IF hi2 IS NULL OR hi2 <= lo2 THEN hi2 := coalesce(lo2, 0) + 0.5; END IF;
    hi2 := least(hi2 + (hi2 / 2 - lo2 / 2) * 0.16, 8.9e307);   -- the top label (2 * hi2) stays a float8
    lo2 := coalesce(lo2, 0);

    out := format('<svg class="chart" width="%s" height="%s" viewBox="0 0 %s %s" role="img">', w, h, w, h)
        || format('<rect x="%s" y="%s" width="%s" height="%s" class="plot"/>', l, t, w - l - r, h - t - b);
    -- y axis: bottom, middle, top
    FOR i IN 0..2 LOOP
        out := out || format('<text x="%s" y="%s" class="ax" text-anchor="end">%s</text>', l - 4,
                             round((h - b - i * (h - t - b) / 2 + 4)::numeric, 1),
                             @extschema@.capacity_html(@extschema@.capacity_fmt(2 * (lo2 + i * (hi2 / 2 - lo2 / 2)))));
    END LOOP;
    -- x axis: first day, end
    out := out || format('<text x="%s" y="%s" class="ax">%s</text>', l, h - 6, to_char(days[1] AT TIME ZONE 'UTC', 'YYYY-MM-DD'))
               || format('<text x="%s" y="%s" class="ax" text-anchor="end">%s</text>', w - r, h - 6,
                         to_char(to_timestamp(x1) AT TIME ZONE 'UTC', 'YYYY-MM-DD'));
    -- forecast band (polygon) and curve
    IF cardinality(band_at) > 2 THEN
        SELECT string_agg(round((l + (extract(epoch FROM least(a, to_timestamp(x1))) - x0) / (x1 - x0) * (w - l - r))::numeric, 1) || ','
                          || round((h - b - (least(y / 2, hi2) - lo2) / (hi2 - lo2) * (h - t - b))::numeric, 1), ' ' ORDER BY n)
          INTO pts FROM unnest(band_at, band_v) WITH ORDINALITY AS u(a, y, n);
        out := out || format('<polygon class="band" points="%s"/>', pts);
    END IF;
    IF cardinality(fc_at) > 1 THEN
        SELECT string_agg(round((l + (extract(epoch FROM least(a, to_timestamp(x1))) - x0) / (x1 - x0) * (w - l - r))::numeric, 1) || ','
                          || round((h - b - (least(y / 2, hi2) - lo2) / (hi2 - lo2) * (h - t - b))::numeric, 1), ' ' ORDER BY n)
          INTO pts FROM unnest(fc_at, fc_v) WITH ORDINALITY AS u(a, y, n);
        out := out || format('<polyline class="fc" data-points="%s" points="%s"/>', cardinality(fc_at), pts);
    END IF;
    IF eta IS NOT NULL AND extract(epoch FROM eta) <= x1 THEN
        out := out || format('<line class="eta" x1="%1$s" x2="%1$s" y1="%2$s" y2="%3$s"/><text class="ax eta-l" x="%6$s" y="%4$s" text-anchor="end">eta %5$s</text>',
                             round((l + (extract(epoch FROM eta) - x0) / (x1 - x0) * (w - l - r))::numeric, 1),
                             t, h - b, t + 12, to_char(eta AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                             round((l + (extract(epoch FROM eta) - x0) / (x1 - x0) * (w - l - r) - 3)::numeric, 1));
    END IF;
    IF threshold IS NOT NULL THEN
        out := out || format('<line class="thr" x1="%s" x2="%s" y1="%s" y2="%3$s"/>', l, w - r,
                             round((h - b - (threshold / 2 - lo2) / (hi2 - lo2) * (h - t - b))::numeric, 1));
    END IF;
    -- the series: a new subpath after each gap; a day with no neighbour is a dot
    FOR k IN 1..nser LOOP
        path := ''; pen := false; npts := 0; dots := '';
        nm := CASE WHEN k = 1 THEN NULL ELSE more_names[k - 1] END;
        FOR i IN 1..cardinality(days) LOOP
            v := CASE WHEN k = 1 THEN vals[i] ELSE more[k - 1][i] END;
            IF v IS NULL THEN
                pen := false;
                CONTINUE;
            END IF;
            npts := npts + 1;
            path := path || CASE WHEN pen THEN 'L' ELSE 'M' END
                 || round((l + (extract(epoch FROM days[i]) - x0) / (x1 - x0) * (w - l - r))::numeric, 1) || ' '
                 || round((h - b - (v / 2 - lo2) / (hi2 - lo2) * (h - t - b))::numeric, 1) || ' ';
            pen := true;
            IF (i = 1 OR (CASE WHEN k = 1 THEN vals[i - 1] ELSE more[k - 1][i - 1] END) IS NULL)
               AND (i = cardinality(days) OR (CASE WHEN k = 1 THEN vals[i + 1] ELSE more[k - 1][i + 1] END) IS NULL) THEN
                dots := dots || format('<circle class="dot s%s" r="2.5" cx="%s" cy="%s"/>', k,
                    round((l + (extract(epoch FROM days[i]) - x0) / (x1 - x0) * (w - l - r))::numeric, 1),
                    round((h - b - (v / 2 - lo2) / (hi2 - lo2) * (h - t - b))::numeric, 1));
            END IF;
        END LOOP;
        IF npts > 0 THEN
            out := out || format('<path class="series s%s"%s data-points="%s" d="%s"/>', k,
                                 CASE WHEN nm IS NULL THEN '' ELSE ' data-series="' || @extschema@.capacity_html(nm) || '"' END,
                                 npts, rtrim(path)) || dots;
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM unnest(vals || ARRAY(SELECT unnest(more))) x WHERE x IS NOT NULL) THEN
        out := out || format('<text x="%s" y="%s" class="ax" text-anchor="middle">no samples in these days</text>',
                             (w + l) / 2, h / 2);
    END IF;
    RETURN out || '</svg>';
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_svg_chart(timestamptz[], double precision[], double precision, timestamptz[], double precision[], timestamptz[], double precision[], timestamptz, timestamptz, double precision[], text[]) IS
    'An inline SVG line chart of a daily series (NULL values are gaps), its threshold as a dashed line, '
    'the forecast curve fc_at/fc_v with its band polygon band_at/band_v and the eta marked; x runs to x_end; '
    'more: further series (one row each, named by more_names). Errors: 2202E lengths differ, 22023 NaN or infinity, 22008 infinite time.';
CREATE OR REPLACE FUNCTION @extschema@.capacity_forecast_at(t0 timestamptz, t1 timestamptz, w double precision)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- w outside 0..1 (or NaN) is clamped: a point between t0 and t1, never an overflow
    SELECT to_timestamp(extract(epoch FROM t0)::float8
                        + (extract(epoch FROM t1)::float8 - extract(epoch FROM t0)::float8) * least(1::float8, greatest(0::float8, w)))
$$;
COMMENT ON FUNCTION @extschema@.capacity_forecast_at(timestamptz, timestamptz, double precision) IS
    'The time a fraction w (clamped to 0..1) of the way from t0 to t1 (finite times; for capacity_forecast_path).';
CREATE OR REPLACE FUNCTION @extschema@.capacity_forecast_path(method text, cur double precision, threshold double precision,
                                                   as_of timestamptz, eta timestamptz, eta_lo timestamptz,
                                                   eta_hi timestamptz, x_end timestamptz,
                                                   OUT fc_at timestamptz[], OUT fc_v double precision[],
                                                   OUT band_at timestamptz[], OUT band_v double precision[])
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    mult boolean := method = 'multiplicative' AND cur > 0 AND threshold > 0;
    fin timestamptz;
    steep timestamptz;
    flat timestamptz;
BEGIN
    IF cur IS NULL OR threshold IS NULL OR eta IS NULL OR as_of IS NULL OR eta <= as_of THEN
        RETURN;
    END IF;
    IF NOT isfinite(as_of) OR NOT isfinite(eta) OR NOT isfinite(coalesce(eta_lo, eta)) OR NOT isfinite(coalesce(eta_hi, eta))
       OR NOT isfinite(coalesce(x_end, eta)) OR as_of > '200000-01-01'::timestamptz OR eta > '200000-01-01'::timestamptz THEN
        RAISE EXCEPTION 'matter_capacity: a forecast is drawn between finite times'
            USING ERRCODE = '22008', HINT = 'Pass as_of and the etas of capacity_forecast(); NULL for an eta there is none of.';
    END IF;
    x_end := greatest(coalesce(x_end, eta), as_of + interval '1 day');
    fin := least(eta, x_end);
    -- the value at time a of the curve that reaches the threshold at e
    SELECT array_agg(a ORDER BY n), array_agg(@extschema@.capacity_forecast_value(mult, cur, threshold, as_of, eta, a) ORDER BY n)
      INTO fc_at, fc_v
      FROM (SELECT n, @extschema@.capacity_forecast_at(as_of, fin, n / 24.0::float8) AS a FROM generate_series(0, 24) n) s;
    steep := least(coalesce(eta_lo, eta), x_end);
    flat := least(coalesce(eta_hi, x_end), x_end);
    IF steep <= as_of THEN
        RETURN;
    END IF;
    SELECT array_agg(a ORDER BY o), array_agg(y ORDER BY o) INTO band_at, band_v
      FROM (SELECT n AS o, @extschema@.capacity_forecast_at(as_of, steep, n / 24.0::float8) AS a,
                   @extschema@.capacity_forecast_value(mult, cur, threshold, as_of, coalesce(eta_lo, eta),
                                                       @extschema@.capacity_forecast_at(as_of, steep, n / 24.0::float8)) AS y
              FROM generate_series(0, 24) n
            UNION ALL
            SELECT 25, x_end, threshold WHERE steep < x_end
            UNION ALL
            SELECT 50 - n, @extschema@.capacity_forecast_at(as_of, flat, n / 24.0::float8),
                   CASE WHEN eta_hi IS NULL THEN cur
                        ELSE @extschema@.capacity_forecast_value(mult, cur, threshold, as_of, eta_hi,
                                                                 @extschema@.capacity_forecast_at(as_of, flat, n / 24.0::float8)) END
              FROM generate_series(0, 24) n) s;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_forecast_path(text, double precision, double precision, timestamptz, timestamptz, timestamptz, timestamptz, timestamptz) IS
    'Points of a forecast as its model draws it (linear, or a compounding curve for multiplicative) from cur at as_of to the threshold at eta, '
    'and the band polygon between the curves reaching it at eta_lo and eta_hi, to x_end; for capacity_svg_chart.';
CREATE OR REPLACE FUNCTION @extschema@.capacity_forecast_value(mult boolean, cur double precision, threshold double precision,
                                                    as_of timestamptz, e timestamptz, a timestamptz)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w double precision;   -- how far along: 0 at as_of, 1 at e
BEGIN
    IF cur IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)
       OR threshold IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) THEN
        RAISE EXCEPTION 'matter_capacity: a forecast is drawn between finite values (% .. %)', cur, threshold
            USING ERRCODE = '22023', HINT = 'Pass the current value and the threshold of a trigger.';
    END IF;
    IF NOT isfinite(as_of) OR NOT isfinite(e) OR NOT isfinite(a) THEN
        RAISE EXCEPTION 'matter_capacity: a forecast is drawn between finite times'
            USING ERRCODE = '22008', HINT = 'Pass as_of, the eta and a time between them.';
    END IF;
    IF e <= as_of THEN
        RETURN threshold;
    END IF;
    w := (extract(epoch FROM a) - extract(epoch FROM as_of)) / (extract(epoch FROM e) - extract(epoch FROM as_of));
    IF mult AND cur > 0 AND threshold > 0 THEN
        RETURN exp(ln(cur) * (1 - w) + ln(threshold) * w);
    END IF;
    RETURN cur * (1 - w) + threshold * w;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_forecast_value(boolean, double precision, double precision, timestamptz, timestamptz, timestamptz) IS
    'The value at time a of a trend from cur at as_of that reaches threshold at e: compounding when mult (and both positive), else linear. '
    'Errors: 22023 a value not finite, 22008 a time not finite.';
CREATE OR REPLACE FUNCTION @extschema@.capacity_report_days(indicator text, labels jsonb, first_day timestamptz,
                                                 ndays integer, as_of timestamptz)
RETURNS double precision[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ndays IS NULL OR ndays < 1 OR ndays > 1000 THEN
        RAISE EXCEPTION 'matter_capacity: a chart has 1 to 1000 days, not %', coalesce(ndays::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'The review draws 90.';
    END IF;
    IF first_day IS NULL OR as_of IS NULL OR NOT isfinite(first_day) OR NOT isfinite(as_of)
       OR first_day > '200000-01-01'::timestamptz THEN
        RAISE EXCEPTION 'matter_capacity: the days of a chart start at a finite time'
            USING ERRCODE = '22008', HINT = 'Pass the first UTC day and as_of.';
    END IF;
    RETURN (SELECT array_agg(coalesce((SELECT avg(d.avg) FROM @extschema@.capacity_sample_daily d
                                        WHERE d.indicator = capacity_report_days.indicator
                                          AND d.labels = capacity_report_days.labels AND d.day = g.day),
                                      (SELECT avg(hh.avg) FROM @extschema@.capacity_sample_hourly hh
                                        WHERE hh.indicator = capacity_report_days.indicator
                                          AND hh.labels = capacity_report_days.labels
                                          AND hh.hour >= g.day AND hh.hour < least(g.day + interval '1 day', as_of)))
                             ORDER BY g.day)
              FROM generate_series(first_day, first_day + (ndays - 1) * interval '1 day', interval '1 day') AS g(day));
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_report_days(text, jsonb, timestamptz, integer, timestamptz) IS
    'Daily averages of the series (indicator, labels) over ndays UTC days from first_day (NULL: no samples that day), '
    'from capacity_sample_daily, else capacity_sample_hourly up to as_of. For capacity_report_html. '
    'Errors: 22023 ndays not 1..1000, 22008 first_day or as_of not finite.';
CREATE OR REPLACE FUNCTION @extschema@.capacity_report_html_at(as_of timestamptz, bindings jsonb, horizon interval, plan text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text := @extschema@.capacity_plan_resolve(plan);
    ndays constant integer := 90;   -- history: the last 90 UTC days, daily
    s record;
    r record;
    f record;
    fp record;
    evals @extschema@.capacity_trigger_row[];
    fcs @extschema@.capacity_forecast_row[];
    today timestamptz := date_trunc('day', as_of AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    first_day timestamptz;
    days timestamptz[];
    vals double precision[];
    more double precision[];
    lbl text;
    doc text;
    rows text := '';
    charts text := '';
    sect text;
    maxrun double precision;
    n integer := 0;
    x_end timestamptz;
    nodata text[] := '{}';
    thr double precision;
    thr_name text;
BEGIN
    PERFORM @extschema@.capacity_check_time('capacity_report_html'::text, as_of, horizon, true);
    first_day := today - (ndays - 1) * interval '1 day';
    days := ARRAY(SELECT g FROM generate_series(first_day, today, interval '1 day') g);
    SELECT * INTO s FROM @extschema@.capacity_plan_stage(as_of, bindings, horizon, p);
    evals := ARRAY(SELECT e FROM @extschema@.capacity_trigger_eval(as_of, bindings,
                                  CASE WHEN p = 'matter-six-stage' THEN NULL ELSE p END) e);
    -- forecasts of the plan's own triggers or conditions (any with a
    -- numeric threshold), and the partition runway (the ladder's rows)
    fcs := ARRAY(SELECT fx FROM @extschema@.capacity_plan_forecast_eval(as_of, horizon, bindings, evals, NULL::integer,
                        CASE WHEN p = 'matter-six-stage' THEN NULL ELSE p END) fx
                 WHERE fx.trigger_name <> 'partition_runway')
        || ARRAY(SELECT fx FROM @extschema@.capacity_forecast_eval(as_of, horizon, bindings, '{}'::@extschema@.capacity_trigger_row[]) fx
                  WHERE fx.trigger_name = 'partition_runway');

    doc := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        || '<title>Capacity review ' || to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC</title>'
        || '<style>'
        || 'body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1d2430;margin:24px auto;max-width:1150px;padding:0 16px}'
        || 'h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}'
        || '.sub{color:#57606a}.verdict{border-radius:6px;padding:12px 16px;margin:12px 0;border:1px solid #d0d7de}'
        || '.verdict .d{font-size:20px;font-weight:700;text-transform:uppercase}'
        || '.v-promote,.v-rollback{background:#ffebe9;border-color:#ff8182}.v-plan{background:#fff8c5;border-color:#d4a72c}.v-stay{background:#dafbe1;border-color:#4ac26b}'
        || 'table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}'
        || 'th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}'
        || '.st-firing{color:#cf222e;font-weight:700}.st-ok{color:#1a7f37}.st-insufficient{color:#6e7781}'
        || '.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}'
        || '.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 10px;break-inside:avoid}.card h3{font-size:14px;margin:0 0 2px}.card p{margin:0 0 4px;color:#57606a;font-size:12px}'
        || 'svg .plot{fill:#fbfcfd;stroke:#d0d7de}svg .ax{font-size:10px;fill:#57606a}svg .series{fill:none;stroke:#0969da;stroke-width:2}svg .dot{fill:#0969da}'
        || 'svg .thr{stroke:#cf222e;stroke-width:1.5;stroke-dasharray:6 4}svg .fc{fill:none;stroke:#8250df;stroke-width:1.5;stroke-dasharray:3 3}'
        || 'svg .band{fill:#8250df;fill-opacity:.15}svg .s2{stroke:#bf8700}svg .s3{stroke:#cf222e}svg .s4{stroke:#1a7f37}svg .s5{stroke:#8250df}svg .s6{stroke:#57606a}svg .dot.s2{fill:#bf8700}svg .dec{fill:#0969da}svg .dec.promote,svg .dec.rollback{fill:#cf222e}svg .eta{stroke:#8250df;stroke-width:1}svg .bar{fill:#2da44e}svg .bar.short{fill:#cf222e}'
        || '.legend span{margin-right:14px}.sw{display:inline-block;width:18px;height:0;border-top:2px solid;vertical-align:middle;margin-right:4px}'
        || '@media print{.charts{display:block}.card{margin-bottom:10px}}'
        || '</style></head><body>';

    doc := doc || '<h1>Capacity review</h1><p class="sub">'
        || format('At %s UTC &middot; horizon %s (to %s) &middot; plan <b>%s</b>',
                  to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                  @extschema@.capacity_html(horizon::text),
                  to_char((as_of + horizon) AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                  @extschema@.capacity_html(p))
        || '</p>';

    -- the verdict (capacity_stage)
    doc := doc || format('<div class="verdict v-%s" id="verdict"><div class="d">%s</div>',
                         @extschema@.capacity_html(s.decision), @extschema@.capacity_html(s.decision))
        || format('<div>Current: <b>%s</b> (%s) &middot; recommended: <b>%s</b> (%s)</div>',
                  @extschema@.capacity_html(s.current_stage::text), @extschema@.capacity_html(s.current_name),
                  @extschema@.capacity_html(s.recommended_stage::text), @extschema@.capacity_html(s.recommended_name));
    IF cardinality(s.firing) > 0 THEN
        doc := doc || '<div>' || CASE WHEN s.decision = 'plan'
                                      THEN 'Forecast to fire by ' || to_char((as_of + horizon) AT TIME ZONE 'UTC', 'YYYY-MM-DD') || ': '
                                      ELSE 'Firing: ' END
            || (SELECT string_agg('<b>' || @extschema@.capacity_html(x) || '</b>', ', ') FROM unnest(s.firing) x) || '</div>';
    ELSE
        doc := doc || '<div>No trigger fires.</div>';
    END IF;
    FOR r IN SELECT jsonb_array_elements_text(s.evidence->'contradictions') AS c LOOP
        doc := doc || '<div>Contradiction: ' || @extschema@.capacity_html(r.c) || '</div>';
    END LOOP;
    IF jsonb_array_length(coalesce(s.evidence->'insufficient_data', '[]')) > 0 THEN
        doc := doc || '<div>Insufficient data for the next stage: '
            || (SELECT @extschema@.capacity_html(string_agg(x, ', ')) FROM jsonb_array_elements_text(s.evidence->'insufficient_data') x)
            || '</div>';
    END IF;
    IF s.runbook IS NOT NULL THEN
        doc := doc || '<div>Runbook: <code>' || @extschema@.capacity_html(s.runbook) || '</code></div>';
    END IF;
    doc := doc || '</div>';
    IF NOT EXISTS (SELECT 1 FROM @extschema@.capacity_sample_hourly h WHERE h.hour <= as_of)
       AND NOT EXISTS (SELECT 1 FROM @extschema@.capacity_latest_sample l WHERE l.sampled_at <= as_of) THEN
        doc := doc || '<p id="empty"><b>No samples yet.</b> Take one with <code>SELECT capacity_sample_now();</code>, '
            || 'start the background worker (docs/operations.md) or load history with '
            || '<code>capacity_import_samples()</code> (docs/indicators.md); the charts fill in from the daily rollups.</p>';
    END IF;

    -- triggers (capacity_trigger_eval) with their forecasts
    FOR r IN SELECT e.*, fr.eta, fr.eta_earliest, fr.eta_latest, fr.status AS fstatus, fr.current_value AS fcur,
                    fr.method AS fmethod
               FROM unnest(evals) e
               LEFT JOIN LATERAL (SELECT x.* FROM unnest(fcs) x
                                   WHERE x.trigger_name = e.trigger_name AND x.labels = e.labels
                                     AND x.threshold IS NOT DISTINCT FROM e.threshold LIMIT 1) fr ON true
              ORDER BY e.stage NULLS LAST, e.trigger_name, e.labels::text
    LOOP
        SELECT string_agg(j.key || '=' || j.value, ', ' ORDER BY j.key) INTO lbl FROM jsonb_each_text(r.labels) j;
        rows := rows || format('<tr><td class="n">%s</td><td>%s%s</td><td class="st-%s">%s</td><td class="n">%s</td><td class="n">%s %s%s</td><td>%s</td><td>%s</td></tr>',
            @extschema@.capacity_html(coalesce(r.stage::text, '-')),
            @extschema@.capacity_html(r.trigger_name),
            CASE WHEN lbl IS NULL THEN '' ELSE '<br><span class="sub">' || @extschema@.capacity_html(lbl) || '</span>' END,
            @extschema@.capacity_html(split_part(r.status, ' ', 1)), @extschema@.capacity_html(r.status),
            @extschema@.capacity_html(@extschema@.capacity_fmt(r.value)),
            @extschema@.capacity_html(r.comparator), @extschema@.capacity_html(@extschema@.capacity_fmt(r.threshold)),
            CASE WHEN r.threshold_is_default THEN '*' ELSE '' END,
            @extschema@.capacity_html(CASE WHEN r.fstatus = 'firing' THEN 'now'
                                           WHEN r.fstatus IN ('forecast', 'beyond horizon')
                                           THEN to_char(r.eta AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                                                || ' (' || to_char(r.eta_earliest AT TIME ZONE 'UTC', 'YYYY-MM-DD') || '..'
                                                || coalesce(to_char(r.eta_latest AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'never') || ')'
                                           ELSE coalesce(r.fstatus, '') END),
            @extschema@.capacity_html(r.description));
        CONTINUE WHEN r.indicator IS NULL OR r.labels IS NULL;
        vals := @extschema@.capacity_report_days(r.indicator, r.labels, first_day, ndays, as_of);
        IF NOT EXISTS (SELECT 1 FROM unnest(vals) v WHERE v IS NOT NULL) THEN
            nodata := nodata || r.trigger_name;
            CONTINUE;
        END IF;
        x_end := CASE WHEN r.fstatus IN ('forecast', 'beyond horizon')
                      THEN least(greatest(coalesce(r.eta_latest, as_of + horizon), r.eta), as_of + horizon) ELSE as_of END;
        SELECT * INTO fp FROM @extschema@.capacity_forecast_path(r.fmethod, r.fcur, r.threshold, as_of,
                                  CASE WHEN r.fstatus IN ('forecast', 'beyond horizon') THEN r.eta END,
                                  r.eta_earliest, r.eta_latest, x_end);
        n := n + 1;
        charts := charts || format('<div class="card"><h3>%s</h3><p>%s%s &middot; now %s &middot; threshold %s %s%s</p>',
                      @extschema@.capacity_html(r.trigger_name),
                      @extschema@.capacity_html(r.indicator), CASE WHEN lbl IS NULL THEN '' ELSE ' (' || @extschema@.capacity_html(lbl) || ')' END,
                      CASE WHEN r.value IS NULL THEN 'no value (' || @extschema@.capacity_html(r.status) || ')'
                           ELSE @extschema@.capacity_html(@extschema@.capacity_fmt(r.value)) END,
                      @extschema@.capacity_html(r.comparator), @extschema@.capacity_html(@extschema@.capacity_fmt(r.threshold)),
                      CASE WHEN fp.fc_at IS NULL THEN ''
                           ELSE ' &middot; ' || @extschema@.capacity_html(r.fmethod) || ' trend' END)
            || @extschema@.capacity_svg_chart(days, vals, r.threshold, fp.fc_at, fp.fc_v, fp.band_at, fp.band_v,
                   CASE WHEN r.fstatus IN ('forecast', 'beyond horizon') THEN r.eta END, x_end)
            || '</div>';
    END LOOP;
    doc := doc || '<h2>Triggers</h2><table id="triggers"><tr><th>stage</th><th>trigger</th><th>status</th><th>value</th>'
        || '<th>threshold</th><th>forecast eta (band)</th><th>what it measures</th></tr>' || rows
        || '</table><p class="sub">* threshold still at its default SLO setting (capacity_set_threshold)</p>';
    doc := doc || '<h2>History and forecast</h2><p class="legend sub">'
        || '<span><i class="sw" style="border-color:#0969da"></i>daily average, last 90 days (gaps: no samples)</span>'
        || '<span><i class="sw" style="border-color:#cf222e;border-top-style:dashed"></i>threshold</span>'
        || '<span><i class="sw" style="border-color:#8250df;border-top-style:dotted"></i>forecast as fitted (linear or compounding) to the eta, shaded band</span></p>'
        || CASE WHEN n = 0 THEN '<p>No metric trigger has samples in the last 90 days.</p>' ELSE '<div class="charts" id="history">' || charts || '</div>' END
        || CASE WHEN cardinality(nodata) = 0 THEN ''
                ELSE '<p class="sub" id="nodata">No samples in the last 90 days (not charted): '
                     || @extschema@.capacity_html(array_to_string(ARRAY(SELECT DISTINCT x FROM unnest(nodata) x ORDER BY 1), ', ')) || '</p>' END;

    -- workload: latency percentiles, QPS, each pool's utilisation
    sect := '';
    FOR r IN SELECT * FROM (VALUES ('read', 'Read latency (ms)'), ('write', 'Write latency (ms)')) v(k, title) LOOP
        vals := @extschema@.capacity_report_days(r.k || '_latency_p50_ms', '{}'::jsonb, first_day, ndays, as_of);
        more := ARRAY[@extschema@.capacity_report_days(r.k || '_latency_p95_ms', '{}'::jsonb, first_day, ndays, as_of),
                      @extschema@.capacity_report_days(r.k || '_latency_p99_ms', '{}'::jsonb, first_day, ndays, as_of)];
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM unnest(vals || ARRAY(SELECT unnest(more))) v WHERE v IS NOT NULL);
        sect := sect || format('<div class="card" id="latency-%s"><h3>%s</h3><p>p50 (blue), p95 (amber), p99 (red): daily averages</p>', r.k, r.title)
            || @extschema@.capacity_svg_chart(days, vals, NULL::float8, x_end => as_of, more => more, more_names => ARRAY['p95', 'p99']) || '</div>';
    END LOOP;
    vals := @extschema@.capacity_report_days('read_qps', '{}'::jsonb, first_day, ndays, as_of);
    more := ARRAY[@extschema@.capacity_report_days('write_qps', '{}'::jsonb, first_day, ndays, as_of)];
    IF EXISTS (SELECT 1 FROM unnest(vals || ARRAY(SELECT unnest(more))) v WHERE v IS NOT NULL) THEN
        sect := sect || '<div class="card" id="qps"><h3>Queries per second</h3><p>read (blue), write (amber): daily averages</p>'
            || @extschema@.capacity_svg_chart(days, vals, NULL::float8, x_end => as_of, more => more, more_names => ARRAY['write']) || '</div>';
    END IF;
    FOR r IN SELECT d.labels FROM @extschema@.capacity_sample_daily d
              WHERE d.indicator = 'pool_utilization' AND d.day >= first_day AND d.day <= today
              GROUP BY d.labels ORDER BY d.labels::text LIMIT 20
    LOOP
        SELECT string_agg(j.key || '=' || j.value, ', ' ORDER BY j.key) INTO lbl FROM jsonb_each_text(r.labels) j;
        vals := ARRAY(SELECT (SELECT d.avg FROM @extschema@.capacity_sample_daily d
                               WHERE d.indicator = 'pool_utilization' AND d.labels = r.labels AND d.day = g)
                        FROM unnest(days) WITH ORDINALITY AS u(g, o) ORDER BY o);
        sect := sect || format('<div class="card pool"><h3>Pool %s</h3><p>pool_utilization, daily average (%%)</p>',
                               @extschema@.capacity_html(coalesce(lbl, 'all')))
            || @extschema@.capacity_svg_chart(days, vals, 80::float8, x_end => as_of) || '</div>';
    END LOOP;
    doc := doc || '<h2>Workload</h2>'
        || CASE WHEN sect = '' THEN '<p>No latency, QPS or pool samples in the last 90 days.</p>'
                ELSE '<div class="charts" id="workload">' || sect || '</div>' END;

    -- per managed table: rows and bytes against the next stage's threshold
    sect := '';
    FOR f IN SELECT p2.table_name::text AS t FROM @extschema@.capacity_policy p2 ORDER BY 1 LOOP
        FOR r IN SELECT * FROM (VALUES ('table_rows', 'rows'), ('table_bytes', 'bytes')) v(ind, what) LOOP
            vals := @extschema@.capacity_report_days(r.ind, jsonb_build_object('table', f.t), first_day, ndays, as_of);
            CONTINUE WHEN NOT EXISTS (SELECT 1 FROM unnest(vals) v WHERE v IS NOT NULL);
            -- the lowest stage ahead with a trigger on this table's series
            SELECT e.threshold, e.trigger_name INTO thr, thr_name FROM unnest(evals) e
             WHERE e.indicator = r.ind AND e.labels ->> 'table' = f.t AND e.stage > s.current_stage
             ORDER BY e.stage, e.threshold LIMIT 1;
            sect := sect || format('<div class="card tbl"><h3>%s: %s</h3><p>%s</p>', @extschema@.capacity_html(f.t), r.what,
                                   CASE WHEN thr_name IS NULL THEN 'no trigger of a stage ahead on it'
                                        ELSE 'next stage''s threshold: ' || @extschema@.capacity_html(thr_name) || ' '
                                             || @extschema@.capacity_html(@extschema@.capacity_fmt(thr)) END)
                || @extschema@.capacity_svg_chart(days, vals, thr, x_end => as_of) || '</div>';
        END LOOP;
    END LOOP;
    doc := doc || '<h2>Managed tables</h2>'
        || CASE WHEN sect = '' THEN '<p>No row or byte samples of managed tables in the last 90 days.</p>'
                ELSE '<div class="charts" id="tables">' || sect || '</div>' END;

    -- partition runway (capacity_forecast's partition_runway rows)
    SELECT max(x.current_value) INTO maxrun FROM unnest(fcs) x WHERE x.trigger_name = 'partition_runway';
    maxrun := greatest(coalesce(maxrun, 0), 30);
    doc := doc || '<h2>Partition runway</h2><table id="runway"><tr><th>table</th><th>runway (days)</th><th></th><th>default-partition rows</th><th>note</th></tr>';
    n := 0;
    FOR f IN SELECT x.*, (SELECT l.value FROM @extschema@.capacity_latest_sample l
                           WHERE l.indicator = 'default_partition_rows' AND l.labels = x.labels
                             AND l.sampled_at <= as_of) AS deflt
               FROM unnest(fcs) x WHERE x.trigger_name = 'partition_runway' ORDER BY x.labels->>'table'
    LOOP
        n := n + 1;
        doc := doc || format('<tr><td>%s</td><td class="n">%s</td><td><svg class="runway" width="320" height="14" role="img"><rect class="bar%s" x="0" y="2" height="10" width="%s"/></svg></td><td class="n">%s</td><td>%s</td></tr>',
            @extschema@.capacity_html(f.labels->>'table'),
            @extschema@.capacity_html(@extschema@.capacity_fmt(f.current_value)),
            CASE WHEN f.current_value < 7 THEN ' short' ELSE '' END,
            round((320 * greatest(f.current_value, 0) / maxrun)::numeric, 1),
            @extschema@.capacity_html(CASE WHEN f.deflt IS NULL THEN 'not sampled' ELSE @extschema@.capacity_fmt(f.deflt) END),
            @extschema@.capacity_html(f.note));
    END LOOP;
    IF n = 0 THEN
        doc := doc || '<tr><td colspan="5">No managed tables (capacity_manage).</td></tr>';
    END IF;
    doc := doc || '</table>';

    -- the fleet (capacity_fleet_member, docs/fleet.md): what the sampler
    -- recorded per member (labels {member}) up to as_of; never a live poll,
    -- so the page stays read-only, bounded and the same for a pinned as_of
    IF EXISTS (SELECT 1 FROM @extschema@.capacity_fleet_member) THEN
        doc := doc || '<h2>Fleet</h2><table id="fleet"><tr><th>member</th><th>kind</th><th>labels</th><th>up</th><th>last seen (UTC)</th>'
            || '<th>rtt ms</th><th>read QPS</th><th>write QPS</th><th>read p99 ms</th><th>CPU %</th><th>replica lag s</th><th>pool %</th></tr>';
        sect := '';
        FOR r IN SELECT m.name, m.kind, m.labels,
                        (SELECT jsonb_object_agg(x.indicator, x.value) FROM (
                            SELECT DISTINCT ON (l.indicator) l.indicator, l.last AS value
                              FROM @extschema@.capacity_sample_hourly l
                             WHERE l.labels = jsonb_build_object('member', m.name) AND l.hour <= as_of
                               AND l.hour > as_of - interval '2 days'
                               AND l.indicator IN ('fleet_member_up', 'fleet_rtt_ms', 'read_qps', 'write_qps',
                                                   'read_latency_p99_ms', 'cpu_utilization', 'replica_lag_seconds', 'pool_utilization')
                             ORDER BY l.indicator, l.hour DESC) x) AS v,
                        (SELECT max(l.hour) FROM @extschema@.capacity_sample_hourly l
                          WHERE l.indicator = 'fleet_rtt_ms' AND l.labels = jsonb_build_object('member', m.name)
                            AND l.hour <= as_of) AS seen
                   FROM @extschema@.capacity_fleet_member m ORDER BY m.name
        LOOP
            doc := doc || format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td></tr>',
                @extschema@.capacity_html(r.name), @extschema@.capacity_html(r.kind), @extschema@.capacity_html(r.labels::text),
                CASE (r.v ->> 'fleet_member_up')::float8 WHEN 1 THEN 'yes' WHEN 0 THEN '<b>no</b>' ELSE '?' END,
                coalesce(to_char(r.seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), 'never'),
                @extschema@.capacity_html(@extschema@.capacity_fmt((r.v ->> 'fleet_rtt_ms')::float8)),
                @extschema@.capacity_html(@extschema@.capacity_fmt((r.v ->> 'read_qps')::float8)),
                @extschema@.capacity_html(@extschema@.capacity_fmt((r.v ->> 'write_qps')::float8)),
                @extschema@.capacity_html(@extschema@.capacity_fmt((r.v ->> 'read_latency_p99_ms')::float8)),
                @extschema@.capacity_html(@extschema@.capacity_fmt((r.v ->> 'cpu_utilization')::float8)),
                @extschema@.capacity_html(@extschema@.capacity_fmt((r.v ->> 'replica_lag_seconds')::float8)),
                @extschema@.capacity_html(@extschema@.capacity_fmt((r.v ->> 'pool_utilization')::float8)));
            vals := @extschema@.capacity_report_days('read_qps', jsonb_build_object('member', r.name), first_day, ndays, as_of);
            more := ARRAY[@extschema@.capacity_report_days('write_qps', jsonb_build_object('member', r.name), first_day, ndays, as_of),
                          @extschema@.capacity_report_days('fleet_rtt_ms', jsonb_build_object('member', r.name), first_day, ndays, as_of)];
            CONTINUE WHEN NOT EXISTS (SELECT 1 FROM unnest(vals || ARRAY(SELECT unnest(more))) x WHERE x IS NOT NULL);
            sect := sect || format('<div class="card member"><h3>Member %s</h3><p>read QPS (blue), write QPS (amber), poll round trip ms (red): daily averages</p>',
                                   @extschema@.capacity_html(r.name))
                || @extschema@.capacity_svg_chart(days, vals, NULL::float8, x_end => as_of, more => more, more_names => ARRAY['write', 'rtt']) || '</div>';
        END LOOP;
        doc := doc || '</table>' || CASE WHEN sect = '' THEN '<p class="sub">No member samples in the last 90 days.</p>'
                                         ELSE '<div class="charts" id="members">' || sect || '</div>' END;
    END IF;

    -- EXPLAIN checks failing at their last run up to as_of
    doc := doc || '<h2>EXPLAIN checks failing</h2><table id="explain"><tr><th>check</th><th>partitions scanned</th><th>max</th><th>error</th><th>at (UTC)</th></tr>';
    n := 0;
    FOR r IN SELECT * FROM (SELECT DISTINCT ON (x.name) x.name, x.partitions_scanned, x.max_partitions, x.passed, x.error, x.as_of AS at
                              FROM @extschema@.capacity_explain_result x
                              JOIN @extschema@.capacity_explain_check c ON c.name = x.name
                             WHERE x.as_of <= capacity_report_html_at.as_of
                             ORDER BY x.name, x.id DESC) z
              WHERE NOT z.passed ORDER BY z.name
    LOOP
        n := n + 1;
        doc := doc || format('<tr><td>%s</td><td class="n">%s</td><td class="n">%s</td><td>%s</td><td>%s</td></tr>',
            @extschema@.capacity_html(r.name), @extschema@.capacity_html(coalesce(r.partitions_scanned::text, '?')),
            @extschema@.capacity_html(r.max_partitions::text), @extschema@.capacity_html(r.error),
            to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'));
    END LOOP;
    IF n = 0 THEN
        doc := doc || '<tr><td colspan="5">No failing check at its last run (capacity_explain_run).</td></tr>';
    END IF;
    doc := doc || '</table>';

    -- decisions up to as_of: a timeline of the 90 days, then the log
    SELECT string_agg(format('<circle class="dec %s" r="5" cx="%s" cy="20"><title>%s</title></circle>',
                             @extschema@.capacity_html(d.decision),
                             round((62 + extract(epoch FROM d.decided_at - first_day) / extract(epoch FROM as_of - first_day) * 486)::numeric, 1),
                             @extschema@.capacity_html(to_char(d.decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') || ' ' || d.decision
                                                       || coalesce(': ' || left(d.note, 80), ''))), '' ORDER BY d.decided_at, d.id),
           count(*)
      INTO sect, n
      FROM @extschema@.capacity_decision d WHERE d.decided_at <= as_of AND d.decided_at >= first_day;
    doc := doc || '<h2>Decisions</h2>'
        || format('<svg class="timeline" id="timeline" data-points="%s" width="560" height="40" viewBox="0 0 560 40" role="img">', n)
        || '<line x1="62" x2="548" y1="20" y2="20" stroke="#d0d7de"/>'
        || format('<text x="62" y="38" class="ax">%s</text><text x="548" y="38" class="ax" text-anchor="end">%s</text>',
                  to_char(first_day AT TIME ZONE 'UTC', 'YYYY-MM-DD'), to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD'))
        || coalesce(sect, '') || '</svg>';
    doc := doc || '<table id="decisions"><tr><th>when (UTC)</th><th>decision</th><th>stage</th><th>evaluation</th><th>by</th><th>note</th></tr>';
    n := 0;
    FOR r IN SELECT d.* FROM @extschema@.capacity_decision d WHERE d.decided_at <= as_of
              ORDER BY d.decided_at DESC, d.id DESC LIMIT 20
    LOOP
        n := n + 1;
        doc := doc || format('<tr><td>%s</td><td>%s</td><td class="n">%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
            to_char(r.decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), @extschema@.capacity_html(r.decision),
            @extschema@.capacity_html(r.current_stage::text || coalesce(' (' || r.current_tier || ')', '')),
            @extschema@.capacity_html(r.evaluation), @extschema@.capacity_html(r.decided_by::text),
            @extschema@.capacity_html(r.note));
    END LOOP;
    IF n = 0 THEN
        doc := doc || '<tr><td colspan="6">No decisions recorded (capacity_decide).</td></tr>';
    END IF;
    doc := doc || '</table><p class="sub">Generated by matter_capacity capacity_report_html(); '
        || 'figures from capacity_stage, capacity_trigger_status and capacity_forecast at the same as_of.</p></body></html>';
    RETURN doc;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_report_html_at(timestamptz, jsonb, interval, text) IS
    'Internal: capacity_report_html(as_of, horizon, plan) with the hot tables resolved by the caller (capacity_bindings()).';
COMMENT ON FUNCTION @extschema@.capacity_report_html(timestamptz, interval, text) IS
    'The capacity review as one self-contained HTML document (inline CSS and SVG, nothing fetched): '
    'capacity_report_html(as_of timestamptz DEFAULT now(), horizon interval DEFAULT ''6 months'', plan text DEFAULT NULL). '
    'Verdict from capacity_stage(as_of, horizon, plan); triggers, values and thresholds from capacity_trigger_eval; '
    '90-day charts from capacity_sample_daily (else capacity_sample_hourly) with the threshold and the forecast (as fitted: linear or compounding) '
    'with its band and eta (capacity_plan_forecast_eval, for any plan); latency, QPS and pools; managed tables'' rows and bytes against the next stage; '
    'partition runway; the fleet (capacity_fleet_member) with each member''s recorded figures and chart when members are registered; '
    'failing EXPLAIN checks; decisions up to as_of as a timeline. Every value from data is HTML-escaped.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report_days(text, jsonb, timestamptz, integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_report_days(text, jsonb, timestamptz, integer, timestamptz) TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report_html_at(timestamptz, jsonb, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_report_html_at(timestamptz, jsonb, interval, text) TO pg_monitor;

-- ======== change of granularity: EXPLAIN checks follow the seam period; capacity_manage says so ========
-- @period_start@ ... in params, in UTC: the bounds of the managed table's
-- partition holding as_of (after a change of granularity the period at
-- the seam is shorter than the grid's), else of the policy's grid period;
-- the next period likewise.

COMMENT ON FUNCTION @extschema@.capacity_manage IS
    'Register or update the partition policy of a table declared PARTITION BY RANGE (time_column). '
    'Another granularity on a managed table applies to the periods not yet made: the first starts where the last existing one ends. '
    'Error 55000 when the hash column changes once periods exist.';

-- ======== sampler: a sampling rolls up the hours since the previous one; capacity_record rolls up values older than that ========
-- 31_indicator_functions.sql: capacity_record (its final text stands above)

-- ======== one write path of a sample: the import writes through the sampler's (capacity_write_samples) ========
-- 31_indicator_functions.sql: capacity_write_samples
-- The same write path in bulk (the import): element i of the arrays is
-- sample i.
CREATE OR REPLACE FUNCTION @extschema@.capacity_write_samples(indicators text[], labels jsonb[], sampled_at timestamptz[],
                                                   "values" double precision[])
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_write_samples';
COMMENT ON FUNCTION @extschema@.capacity_write_samples IS
    'Internal (not for PUBLIC): write samples in bulk as the sampler writes (src/sampler.c): arrays of one length, element i is sample i; '
    'raw samples and the newest value of each series; no checks. Returns the series whose newest value was written.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_write_samples(text[], jsonb[], timestamptz[], double precision[]) FROM PUBLIC;
-- 33_measures.sql: capacity_import_load

-- ======== stage evaluation under 10 ms: a day's p95 kept in the daily rollups; the triggers resolved with a cached plan; the window's samples joined on the series' key ========
-- capacity_sample_daily.p95: the exact p95 of a complete day's raw samples,
-- for the indicators an N-day plan condition reads by p95, so those
-- conditions read it from the rollup instead of sorting the raw samples on
-- every evaluation.  Nothing to back-fill: a 1.0 database has no plan
-- conditions; days rolled up before a plan reading a p95 is installed keep
-- a NULL p95 and are read from the raw samples, as before.
ALTER TABLE @extschema@.capacity_sample_daily ADD COLUMN p95 double precision;

CREATE OR REPLACE FUNCTION @extschema@.capacity_roll_up_days(from_ts timestamptz, to_ts timestamptz)
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_roll_up_days';

COMMENT ON FUNCTION @extschema@.capacity_roll_up_days IS
    'Recompute the daily rollups (what forecasts fit) of the days from_ts .. to_ts touches from the hourly rollups; '
    'p95: the exact p95 of a complete day''s raw samples, kept for the indicators an N-day plan condition reads by p95 (else NULL).';

-- ======== fleet: fixes from the hostile review ========
-- 48_fleet.sql: capacity_fleet_add refuses a server already registered under
-- another name (42710) and truncates hostile names in its messages;
-- capacity_fleet_remove (now defined in 49_tenant_moves.sql) refuses NULL
-- (22004) and a member with open tenant moves or tenants on it (55000).
-- (The connection-string refusal and password scrubbing are C: capacity_fleet_check.)
COMMENT ON FUNCTION @extschema@.capacity_fleet_add(text, text, text, jsonb) IS
    'Registers a fleet member after connecting to it (within matter_capacity.fleet_timeout).  kind: replica | tier | '
    'region | pooler; target: a postgres_fdw foreign server name (credentials in its user mapping for the extension '
    'owner), or for a pooler a PgBouncer admin conninfo without password.  labels: region {"region": ...}, tier '
    '{"tenants": [...]}.  Errors (nothing registered): 22023 bad name/kind/labels or a connection string where a server '
    'name is expected, 42710 the name exists or the server is already another member, and those of capacity_fleet_check.';

COMMENT ON FUNCTION @extschema@.capacity_fleet_remove(text) IS
    'Forgets a fleet member (its recorded samples stay).  22004 for NULL, 42704 if there is none of that name, '
    '55000 while tenant moves to it are not cleaned up or tenants live on it (capacity_tenant_tier).  '
    'The foreign server and user mapping are left to the DBA.  Defined here, not in 48_fleet.sql, because it reads '
    'capacity_tenant_move.';

-- ======== tenant moves: fixes from the hostile review ========
-- A NULL argument of a capacity_tenant_move* function is an error (22004)
-- naming the argument, never a silent NULL or a crash: the C functions
-- check it themselves.  Mirrors src/sql/49_tenant_moves.sql.

-- (capacity_tenant_move_verify, _freeze, _cutover and _abort: their definitions
-- above are CALLED ON NULL INPUT.)

-- ======== fleet: security fixes from the second hostile review (F1, F8, L4) ========
-- 48_fleet.sql: capacity_fleet_check_target (new) refuses password-bearing
-- targets first, with errors that keep the statement out of the server log;
-- capacity_fleet_add calls it first and gives a clear 42501 to a role that
-- may not write the registry.  capacity_fleet_check's comment names the
-- password rule it now applies (C; also at every poll).
COMMENT ON FUNCTION @extschema@.capacity_fleet_check(text, text, text) IS
    'Connects to a prospective member within matter_capacity.fleet_timeout and raises if it cannot be one '
    '(unknown server 42704, no user mapping 42704, unreachable 08001, this very database 42P17, '
    'a pooler that is not PgBouncer 42809, a password in a pooler conninfo 22023, a connection postgres_fdw''s password '
    'rule refuses 42501: no password in the mapping, or the member did not ask for it, unless the server''s owner and '
    'the extension owner are superusers or the mapping says password_required ''false'').  Returns its version and role.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_fleet_check_target(name text, kind text, target text)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_fleet_check_target';
COMMENT ON FUNCTION @extschema@.capacity_fleet_check_target(text, text, text) IS
    'Refuses (22023) a fleet target that carries a password (any kind), a connection string that does not parse, '
    'or a connection string where a postgres_fdw server name is expected, without echoing it; these errors keep the '
    'statement (which holds the password) out of the server log.  capacity_fleet_add calls it before anything else.';

COMMENT ON FUNCTION @extschema@.capacity_fleet_add(text, text, text, jsonb) IS
    'Registers a fleet member after connecting to it (within matter_capacity.fleet_timeout).  kind: replica | tier | '
    'region | pooler; target: a postgres_fdw foreign server name (credentials in its user mapping for the extension '
    'owner), or for a pooler a PgBouncer admin conninfo without password.  labels: region {"region": ...}, tier '
    '{"tenants": [...]}.  Errors (nothing registered): 22023 bad name/kind/labels or a connection string where a server '
    'name is expected, 42710 the name exists or the server is already another member, 42501 the role may not write '
    'the registry (run it as the extension owner), and those of capacity_fleet_check_target and capacity_fleet_check.';
-- ======== SQL review (breaker2): one check of as_of and horizon; owner-rights calls typed; plan imports keep shared settings ========
-- F2: every public function taking as_of/horizon calls capacity_check_time
-- (an infinite as_of ran an unbounded generate_series).  F7: calls made with
-- the owner's rights pass exactly typed arguments.  F5: capacity_plan_import
-- creates missing settings, keeps existing ones unless "replace": true.
-- The changed functions stand above with their final text; mirrors
-- src/sql/07_time_arguments.sql.

CREATE OR REPLACE FUNCTION @extschema@.capacity_check_time(fn text, as_of timestamptz,
                                                horizon interval DEFAULT NULL, has_horizon boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: %: as_of must not be NULL', fn
            USING ERRCODE = '22004', HINT = 'Omit it to use now().';
    END IF;
    IF NOT isfinite(as_of) OR as_of < timestamptz '1000-01-01 00:00+00' OR as_of >= timestamptz '9999-01-01 00:00+00' THEN
        RAISE EXCEPTION 'matter_capacity: %: as_of % is not a finite time between the years 1000 and 9998', fn, as_of
            USING ERRCODE = '22008', HINT = 'Omit it to use now(), or pass the time to evaluate at.';
    END IF;
    IF NOT has_horizon THEN
        RETURN;
    END IF;
    IF horizon IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: %: horizon must not be NULL', fn
            USING ERRCODE = '22004', HINT = 'Omit it to look ahead 6 months.';
    END IF;
    IF horizon <= interval '0' OR horizon > interval '10 years' THEN
        RAISE EXCEPTION 'matter_capacity: %: horizon % is not a positive interval of at most 10 years', fn, horizon
            USING ERRCODE = '22023', HINT = 'The capacity plan looks ahead 6 months: pass interval ''6 months''.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_check_time(text, timestamptz, interval, boolean) IS
    'Refuse the time arguments of function fn: as_of NULL (22004), infinite or outside the years 1000..9998 (22008); '
    'with has_horizon, horizon NULL (22004) or not in (0, 10 years] (22023).  Every public function taking as_of or horizon calls it.';
-- executable by PUBLIC: it only refuses, and caller-rights functions (capacity_convert) call it too
-- ======== one rollup path, in C: the daily rollup joins the hourly one (rollup.c); the import rolls up through it ========
-- capacity_roll_up_days is C (src/rollup.c, with capacity_roll_up_hours),
-- and learns which indicators keep a daily p95 from capacity_daily_p95
-- (30_indicators.sql), which the plans piece keeps in step with the plan
-- conditions (40_stages.sql), instead of reading capacity_plan_condition
-- of a later piece.  The import writes every sample raw through the
-- write path (capacity_write_samples loses its raw flag, above) and has
-- the one rollup path roll its hours up, then deletes what is older than
-- the raw samples kept.  Mirrors 30_indicators.sql,
-- 31_indicator_functions.sql, 33_measures.sql and 40_stages.sql.

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

-- The daily rollup keeps an exact p95 for the indicators in
-- capacity_daily_p95 (30_indicators.sql): those a condition reads by p95,
-- kept in step here after every change of the conditions (an import or
-- removal of a plan, an edit by hand, a restore loading them), so the
-- rollup (rollup.c) never reads plans.  The table is small and the
-- conditions few: recomputed whole, once per statement.
CREATE OR REPLACE FUNCTION @extschema@.capacity_daily_p95_sync()
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
-- conditions written before the trigger (none: a 1.0 database has no plans)
INSERT INTO @extschema@.capacity_daily_p95 (indicator)
SELECT DISTINCT c.indicator FROM @extschema@.capacity_plan_condition c
 WHERE c.daily = 'p95' AND c.indicator IS NOT NULL;

COMMENT ON FUNCTION @extschema@.capacity_roll_up_days IS
    'Recompute the daily rollups (what forecasts fit) of the UTC days from_ts .. to_ts touches from the hourly rollups; returns the rollups written. '
    'p95: the exact p95 of a complete day''s raw samples, kept for the indicators in capacity_daily_p95 (those an N-day plan condition reads by p95; else NULL). '
    'Error 22023 unless from_ts <= to_ts, both finite.';

-- ======== tenant moves: one change of a move at a time, resumable cutover, forced abort, leftovers cleaned ========
-- Mirrors src/sql/49_tenant_moves.sql.  capacity_tenant_move_abort gains
-- force (this side only, for a member that cannot be reached), which leaves
-- the move "aborted here"; abort(text) calls keep working through the
-- default.  Cutover resumes after an interruption; cleanup refuses while the
-- member lacks the tenant's rows; start/freeze/cutover/abort/cleanup of one
-- move are serialised (C: src/tenant_move.c).
ALTER TABLE @extschema@.capacity_tenant_move DROP CONSTRAINT capacity_tenant_move_state_check,
    ADD CONSTRAINT capacity_tenant_move_state_check
        CHECK (state IN ('syncing', 'frozen', 'cut over', 'cleaned', 'failed', 'aborted here'));

DROP FUNCTION @extschema@.capacity_tenant_move_abort(text);
CREATE OR REPLACE FUNCTION @extschema@.capacity_tenant_move_abort(tenant text, force boolean DEFAULT false)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move_abort';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_abort(text, boolean) IS
    'Undo a move before cutover: drops the subscription and deletes the tenant''s copied rows on the member, drops the '
    'guard triggers (bounded by lock_timeout), the publication and the slot here; the tenant''s rows here are never '
    'touched.  force => true, for a member that cannot be reached: this side only, with a WARNING; the move stays as '
    '"aborted here" until an abort reaches the member (or a second forced abort forgets it).  A tenant with no move '
    'recorded: drops the publication and slot an interrupted start left here (NOTICE), else 42704.  55P03 while '
    'another call changes the same move.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_abort(text, boolean) FROM PUBLIC;

COMMENT ON FUNCTION @extschema@.capacity_tenant_move_cutover(text) IS
    'For a frozen move: waits (tenant_move_timeout) for lag zero, verifies counts and checksums (XX001 and stays frozen '
    'if they differ), records the tenant in capacity_tenant_tier and in the member''s labels.tenants, drops the '
    'subscription and the publication.  Resumable: if the member has no subscription any more (an interrupted '
    'cutover), both sides are compared as they are and the cutover finishes only if they are equal.  One change of a '
    'move at a time: waits lock_timeout x (lock_retries + 1) for another start/freeze/cutover/abort/cleanup of it '
    '(55P03).  Routing the application is the application''s.';

COMMENT ON FUNCTION @extschema@.capacity_tenant_move_cleanup(text, integer) IS
    'After cutover only, when asked: deletes up to batch_rows of the tenant''s rows per table here, each batch under '
    'lock_timeout; returns the rows deleted.  Call it (one transaction each) until it returns 0: the move is then cleaned.  '
    'Refuses (55000, nothing deleted) while the member has no rows of the tenant in a table that still has some here; '
    'needs the member (08001 if it cannot be reached).';

COMMENT ON VIEW @extschema@.capacity_tenant_moves IS
    'Per move and table: initial sync state on the member (init, copying, copied, synchronized, ready), lag_bytes of '
    'the subscription''s slot here, the tenant''s rows on each side now, the last verification, and the state: '
    'syncing, verifying (copy done, ready to verify and freeze), frozen, cut over, cleaned, failed (with reason), '
    'aborted here (the member''s part left, see reason).';

-- ======== views of 1.0 bound again under the pinned search_path ========
-- Review 4 (F8): a view binds its operators when it is created, and 1.0's
-- were created with the extension's schema on the path, where a role with
-- CREATE there could have planted, before the install, an operator of an
-- exact argument match (oid = regclass in capacity_partitions and
-- capacity_conversions) that every reader of the view then runs. The views
-- 1.0 made and no section above replaced are made again here, with the
-- text they have in src/sql, under this script's pinned search_path.

CREATE OR REPLACE VIEW @extschema@.capacity_policies AS
SELECT p.table_name, p.time_column, p.granularity, p.hash_column, p.hash_partitions,
       p.premake, p.retention, p.retention_action, p.default_partition,
       p.created_at, p.updated_at
  FROM @extschema@.capacity_policy p;

CREATE OR REPLACE VIEW @extschema@.capacity_partitions AS
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

CREATE OR REPLACE VIEW @extschema@.capacity_rollover_log AS
SELECT h.id, h.logged_at, h.as_of, h.table_name, h.action, h.partition_name,
       h.detail, h.duration_ms
  FROM @extschema@.capacity_rollover_history h;

CREATE OR REPLACE VIEW @extschema@.capacity_latest AS
SELECT l.indicator, l.labels, l.sampled_at, l.value, i.unit, i.source
  FROM @extschema@.capacity_latest_sample l
  LEFT JOIN @extschema@.capacity_indicator i ON i.name = l.indicator;

CREATE OR REPLACE VIEW @extschema@.capacity_trigger_status AS
SELECT e.trigger_name, e.stage, e.indicator, e.labels, e.value, e.threshold,
       e.threshold_is_default, e.comparator, e.sustain AS "window", e.samples,
       e.status = 'firing' AS fired, e.status, e.description
  FROM @extschema@.capacity_trigger_eval(now(), @extschema@.capacity_bindings()) e;

CREATE OR REPLACE VIEW @extschema@.capacity_conversions AS
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

-- ======== the conversion checks its grants first ========
-- Review 4 (F6): capacity_convert and capacity_convert_backfill (changed
-- above) call capacity_require_grants before anything. Mirrors
-- src/sql/60_convert.sql.

-- The conversion procedures run as their caller (a table's owner may be
-- granted them) and call functions revoked from PUBLIC: a caller granted
-- only the procedure failed midway with a bare "permission denied for
-- function capacity_convert_check", or, with EXECUTE granted, swapped the
-- table and then could not record the conversion (review 4, F6). Checked
-- first, naming every grant that is missing.
CREATE OR REPLACE FUNCTION @extschema@.capacity_require_grants(fn text, functions regprocedure[],
                                                    tables regclass[], privileges text[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fmissing text;
    tmissing text;
    tgrants text;
BEGIN
    SELECT string_agg(f::text, ', ' ORDER BY f::text) INTO fmissing
      FROM unnest(functions) AS f WHERE NOT has_function_privilege(f::oid, 'EXECUTE');
    SELECT string_agg(format('%s on %s', t.priv, t.tbl), ', ' ORDER BY t.tbl::text),
           string_agg(format('GRANT %s ON %s TO %I;', t.priv, t.tbl, current_user), ' ' ORDER BY t.tbl::text)
      INTO tmissing, tgrants
      FROM unnest(tables, privileges) AS t(tbl, priv) WHERE NOT has_table_privilege(t.tbl::oid, t.priv);
    IF fmissing IS NOT NULL OR tmissing IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % also needs %', fn, concat_ws('; ', 'EXECUTE on ' || fmissing, tmissing)
            USING ERRCODE = '42501',
                  HINT = concat_ws(' ', 'Nothing was done. An operator grants them with the procedure:',
                                   CASE WHEN fmissing IS NOT NULL
                                        THEN format('GRANT EXECUTE ON FUNCTION %s TO %I;', fmissing, current_user) END,
                                   tgrants);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_require_grants(text, regprocedure[], regclass[], text[]) IS
    'Refuses (42501) a caller of procedure fn that lacks EXECUTE on one of functions or privileges[i] on tables[i], '
    'naming every one missing and the GRANT statements to run.';

-- ======== the partition split is bounded per call (lock_timeout, lock budget; review 4a F4); retention limits (F9) ========
COMMENT ON FUNCTION @extschema@.capacity_manage IS
    'Register or update the partition policy of a table declared PARTITION BY RANGE (time_column). '
    'Another granularity on a managed table applies to the periods not yet made: the first starts where the last existing one ends. '
    'Error 55000 when the hash column changes once periods exist; 22023 for a retention that is not from one period to 1000 years with every part positive.';
COMMENT ON FUNCTION @extschema@.capacity_set_hash_partitions IS
    'Partition-split runbook: new and empty future periods get this many hash partitions; data is never rewritten. '
    'One call re-makes periods for about matter_capacity.lock_timeout and within the lock budget (half the shared lock table), '
    'then logs the rest as deferred: call again until no period is deferred. Error 54000 when one period alone passes the budget.';

-- ======== the conversion survives what happens during it (review breaker4a): generated columns, interrupted conversions, schema changes and TRUNCATE during the backfill, column grants, stray rows, one step per table at a time ========
-- Mirrors src/sql/60_convert.sql.
ALTER TABLE @extschema@.capacity_conversion ADD COLUMN stale text;
-- What a backfill copy must share with the table for its period tables to
-- attach as catalog work only and for the replay to fit: columns (type,
-- NOT NULL, generation), constraints, indexes (by definition, not name).
-- A schema change during the backfill (ADD COLUMN, CREATE INDEX, ...)
-- shows as a difference; the backfill then makes its copy again.
CREATE OR REPLACE FUNCTION @extschema@.capacity_convert_shape(rel regclass)
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT format('column %I %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
              CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
              CASE WHEN a.attgenerated <> '' THEN ' GENERATED ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END)
  FROM pg_attribute a
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.attgenerated <> ''
 WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', '')
  FROM pg_constraint k WHERE k.conrelid = rel AND k.contype IN ('c', 'f', 'p', 'u')
UNION ALL
SELECT CASE WHEN x.indisunique THEN 'unique index' ELSE 'index' END
       || substring(pg_get_indexdef(x.indexrelid) FROM ' USING .*$')
  FROM pg_index x WHERE x.indrelid = rel
$$;
COMMENT ON FUNCTION @extschema@.capacity_convert_shape(regclass) IS
    'One line per column (type, NOT NULL, generation), constraint and index (by definition) of rel: what a conversion''s backfill copy must share with its table.';

-- How copy differs from tbl (NULL when it does not), as text for a message.
CREATE OR REPLACE FUNCTION @extschema@.capacity_convert_drift(tbl regclass, copy regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT left(string_agg(d, '; ' ORDER BY d), 500) FROM (
    SELECT 'added ' || s FROM (SELECT @extschema@.capacity_convert_shape(tbl)
                               EXCEPT ALL SELECT @extschema@.capacity_convert_shape(copy)) a(s)
    UNION ALL
    SELECT 'removed ' || s FROM (SELECT @extschema@.capacity_convert_shape(copy)
                                 EXCEPT ALL SELECT @extschema@.capacity_convert_shape(tbl)) b(s)) x(d)
$$;
COMMENT ON FUNCTION @extschema@.capacity_convert_drift(regclass, regclass) IS
    'What the table tbl has that its backfill copy lacks (added ...) and the reverse (removed ...), from capacity_convert_shape; NULL when they agree.';

-- Run inside the backfill's switch, under its locks: a copy that missed a
-- write or no longer has the table's shape is not switched in (55000).
CREATE OR REPLACE FUNCTION @extschema@.capacity_convert_verify(tbl regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    why text;
BEGIN
    SELECT coalesce(c.stale, @extschema@.capacity_convert_drift(c.table_name, c.staging)) INTO why
      FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl AND c.state = 'backfilling';
    IF why IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: the backfill copy of % is out of date: %', tbl, why
            USING ERRCODE = '55000', HINT = 'capacity_convert_backfill() makes the copy again.';
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_convert_verify(regclass) FROM PUBLIC;

-- One conversion step per table at a time: a session-level advisory lock
-- on (this key, the table's oid), held for the whole CALL across its
-- commits.  Another CALL on the same table is refused with 55P03 naming
-- the session; a CALL that ended with an error keeps it until its session
-- ends (or the same session calls again), so the hint says how to tell.
CREATE OR REPLACE FUNCTION @extschema@.capacity_convert_claim(tbl regclass, what text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k integer := (tbl::oid::bigint - CASE WHEN tbl::oid::bigint > 2147483647 THEN 4294967296 ELSE 0 END)::integer;
    h record;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted
                  AND l.classid = 1835230000::oid AND l.objid = tbl::oid AND l.objsubid = 2
                  AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())) THEN
        RETURN;     -- this session's, from a CALL that ended with an error
    END IF;
    IF pg_try_advisory_lock(1835230000, k) THEN
        RETURN;
    END IF;
    SELECT l.pid, a.state, a.application_name INTO h FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 1835230000::oid AND l.objid = tbl::oid AND l.objsubid = 2
       AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
     LIMIT 1;
    RAISE EXCEPTION 'matter_capacity: %: a conversion step of % is already running in session %', what, tbl, coalesce(h.pid::text, '?')
        USING ERRCODE = '55P03',
              HINT = CASE WHEN h.state = 'active' OR h.state IS NULL
                          THEN 'Wait for it to end (capacity_conversions shows the progress); nothing was done.'
                          ELSE format('That session is %s: a CALL there ended with an error and it still holds the claim. '
                                      'Disconnect it (SELECT pg_terminate_backend(%s)), then call again; nothing was done.',
                                      h.state, h.pid) END;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_convert_claim(regclass, text) IS
    'Claims tbl for one conversion step (session advisory lock 1835230000, oid); 55P03 naming the session that holds it.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_convert_claim(regclass, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.capacity_convert_unclaim(tbl regclass)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
SELECT FROM pg_advisory_unlock(1835230000, (tbl::oid::bigint - CASE WHEN tbl::oid::bigint > 2147483647 THEN 4294967296 ELSE 0 END)::integer)
 WHERE EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted
                  AND l.classid = 1835230000::oid AND l.objid = tbl::oid AND l.objsubid = 2)
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_convert_unclaim(regclass) FROM PUBLIC;



-- ======== a large default partition is emptied by the conversion's backfill (issue 17) ========
-- The publications that publish one of rels: by name, FOR ALL TABLES, or
-- through the schema it is in (a comma-separated list, NULL when none).
-- The backfill's copies go into tables a publication would see as new rows.
CREATE OR REPLACE FUNCTION @extschema@.capacity_publications_of(rels regclass[])
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT string_agg(format('%I', p.pubname), ', ' ORDER BY p.pubname) FROM pg_publication p
 WHERE p.puballtables
    OR EXISTS (SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = p.oid AND pr.prrelid = ANY (rels::oid[]))
    OR EXISTS (SELECT 1 FROM pg_publication_namespace pn JOIN pg_class c ON c.relnamespace = pn.pnnspid
                WHERE pn.pnpubid = p.oid AND c.oid = ANY (rels::oid[]))
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_publications_of(regclass[]) FROM PUBLIC;

-- A default partition too big for the rollover's rescue.  Each period the
-- rescue attaches makes PostgreSQL prove that the default partition holds
-- no row of it: a scan of all of it under ACCESS EXCLUSIVE (0.6-0.9 s at
-- 5,000,000 rows, writers waiting; docs/benchmarks.md).  When its rows all
-- lie after the table's last partition (a scheduler down for weeks) the
-- default partition becomes a historical partition [last bound, MAXVALUE)
-- instead, proven by a CHECK validated online, in one short transaction
-- that puts an empty default partition in its place; the conversion's
-- backfill then moves its rows into periods, a batch per transaction.
-- capacity_rollover_proc() and the worker do this on their own above
-- matter_capacity.rescue_backfill_rows rows (src/rollover.c).

-- The suffix the default partition of tbl and its indexes take when it
-- becomes the historical partition: historical, historical2, ... up to 9,
-- the first one no table or index name in its schema has yet (a detached
-- old one is kept until the DBA drops it); NULL when all are taken.
CREATE OR REPLACE FUNCTION @extschema@.capacity_historical_suffix(tbl regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT s.suffix
  FROM pg_class t JOIN pg_partitioned_table pt ON pt.partrelid = t.oid,
       LATERAL (SELECT i, 'historical' || CASE WHEN i > 1 THEN i::text ELSE '' END AS suffix FROM generate_series(1, 9) i) s
 WHERE t.oid = tbl
   AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = t.relnamespace
                      AND c.relname = @extschema@.capacity_derived_name(t.relname::text, s.suffix))
   AND NOT EXISTS (SELECT 1 FROM pg_index x JOIN pg_class ix ON ix.oid = x.indexrelid
                    WHERE x.indrelid = pt.partdefid
                      AND EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = ix.relnamespace
                                     AND c.relname = @extschema@.capacity_derived_name(ix.relname::text, s.suffix)))
 ORDER BY s.i
 LIMIT 1
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_historical_suffix(regclass) FROM PUBLIC;

-- Why the default partition of tbl cannot be emptied this way (one row:
-- SQLSTATE, message, hint), or no row.  Reads as the owner; changes nothing.
CREATE OR REPLACE FUNCTION @extschema@.capacity_empty_default_refusal(tbl regclass, as_of timestamptz)
RETURNS TABLE(code text, message text, hint text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pol @extschema@.capacity_policy;
    dflt regclass;
    typ regtype;
    last_to timestamptz;
    lower_lit text;
    n bigint;
    rel name;
    nsp name;
BEGIN
    IF tbl IS NULL OR as_of IS NULL THEN
        RETURN QUERY SELECT '22004', 'matter_capacity: capacity_empty_default: table and as_of must not be NULL',
                            'capacity_empty_default(''"Event"'')';
        RETURN;
    END IF;
    SELECT * INTO pol FROM @extschema@.capacity_policy p WHERE p.table_name = tbl;
    IF NOT FOUND THEN
        RETURN QUERY SELECT '42704', format('matter_capacity: table %s is not managed', tbl),
                            'Register it first with capacity_manage().';
        RETURN;
    END IF;
    SELECT c.relname, n2.nspname INTO rel, nsp FROM pg_class c JOIN pg_namespace n2 ON n2.oid = c.relnamespace WHERE c.oid = tbl;
    IF NOT pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = tbl), 'USAGE') THEN
        RETURN QUERY SELECT '42501', format('matter_capacity: must be owner of table %s to empty its default partition', tbl),
                            'Run it as the table''s owner.';
        RETURN;
    END IF;
    SELECT nullif(pt.partdefid, 0)::regclass INTO dflt FROM pg_partitioned_table pt WHERE pt.partrelid = tbl;
    IF dflt IS NULL THEN
        RETURN QUERY SELECT '55000', format('matter_capacity: %s has no default partition', tbl),
                            'Nothing to empty.';
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl AND c.state <> 'done') THEN
        RETURN QUERY SELECT '55000', format('matter_capacity: a backfill of %s is under way', tbl),
                            format('CALL capacity_convert_backfill(%L) finishes it; capacity_conversions shows how far it is.', tbl::text);
        RETURN;
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = dflt) <> 'r' THEN
        RETURN QUERY SELECT '0A000', format('matter_capacity: the default partition %s of %s is not a plain table', dflt, tbl),
                            'Only a plain default partition can become the historical partition; CALL capacity_rollover_proc() moves its rows period by period.';
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = tbl AND x.indisprimary) THEN
        RETURN QUERY SELECT '0A000', format('matter_capacity: %s has no primary key, so writes while its default partition is emptied could not be replayed', tbl),
                            'Add a primary key that includes the partition columns, or let CALL capacity_rollover_proc() move the rows period by period.';
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_constraint k WHERE k.contype = 'f' AND k.conparentid = 0 AND k.confrelid IN (tbl, dflt)) THEN
        RETURN QUERY SELECT '0A000', format('matter_capacity: a foreign key references %s', tbl),
                            'Detaching the default partition would check every referencing row; CALL capacity_rollover_proc() moves the rows period by period.';
        RETURN;
    END IF;
    IF @extschema@.capacity_publications_of(ARRAY[tbl, dflt]) IS NOT NULL THEN
        RETURN QUERY SELECT '0A000', format('matter_capacity: %s is published (%s)', tbl, @extschema@.capacity_publications_of(ARRAY[tbl, dflt])),
                            'The backfill''s copies would reach subscribers a second time; CALL capacity_rollover_proc() moves the rows period by period.';
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = dflt AND NOT g.tgisinternal AND g.tgparentid = 0) THEN
        RETURN QUERY SELECT '0A000', format('matter_capacity: the default partition %s has triggers of its own', dflt),
                            'The backfill''s copies would not fire them; CALL capacity_rollover_proc() moves the rows period by period.';
        RETURN;
    END IF;
    -- every row after the last partition: the default partition can take
    -- the range [last bound, MAXVALUE), proven by a constraint
    SELECT max(t.range_to) INTO last_to FROM @extschema@.capacity_partition_tree(tbl) t
     WHERE t.level = 1 AND NOT t.is_default;
    IF last_to = 'infinity' THEN
        RETURN QUERY SELECT '55000', format('matter_capacity: a partition of %s already reaches MAXVALUE', tbl),
                            'Its default partition holds rows no range can take; CALL capacity_rollover_proc() moves them period by period.';
        RETURN;
    END IF;
    IF last_to >= @extschema@.capacity_period_start(as_of, pol.granularity, pol.premake + 1) THEN
        RETURN QUERY SELECT '55000', format('matter_capacity: the partitions of %s reach past as_of plus premake periods', tbl),
                            'The rollover keeps rows beyond that in the default partition; nothing to empty.';
        RETURN;
    END IF;
    SELECT a.atttypid::regtype INTO typ FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = pol.time_column;
    lower_lit := CASE WHEN last_to IS NULL THEN NULL ELSE @extschema@.capacity_time_literal(last_to, typ) END;
    n := @extschema@.capacity_owner_value(tbl, format('SELECT pg_catalog.count(*) FROM (SELECT FROM ONLY %s WHERE %I IS NULL%s LIMIT 1000000) s',
                                                      dflt, pol.time_column,
                                                      CASE WHEN lower_lit IS NULL THEN '' ELSE format(' OR %I < %s', pol.time_column, lower_lit) END))::bigint;
    IF n > 0 THEN
        RETURN QUERY SELECT '55000',
                            format('matter_capacity: %s rows of the default partition %s have no %I or one before %s, the end of the last partition',
                                   n, dflt, pol.time_column, to_char(last_to AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC'),
                            'Only a default partition whose rows all come after the last partition can become the historical partition; '
                            'CALL capacity_rollover_proc() moves such rows period by period (rows outside the policy stay).';
        RETURN;
    END IF;
    IF @extschema@.capacity_historical_suffix(tbl) IS NULL THEN
        RETURN QUERY SELECT '42P07', format('matter_capacity: the names %s to %s (or those of its indexes) are taken',
                                           @extschema@.capacity_derived_name(rel::text, 'historical'), @extschema@.capacity_derived_name(rel::text, 'historical9')),
                            'Earlier conversions left them: drop the detached old tables once checked.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_empty_default_refusal(regclass, timestamptz) IS
    'Why CALL capacity_empty_default(tbl) would refuse (SQLSTATE, message, hint), or no row; changes nothing.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_empty_default_refusal(regclass, timestamptz) FROM PUBLIC;

-- A failed capacity_empty_default: its bound constraint removed (under the
-- lock timeout; when even that lock is not had, the next rollover removes
-- it: rollover.c drop_leftover_bound), the claim released, the error raised.
CREATE OR REPLACE PROCEDURE @extschema@.capacity_empty_default_undo(tbl regclass, dflt regclass, cname name, qual text,
                                                         why text, state text)
LANGUAGE plpgsql
AS $$
DECLARE
    left_bound boolean := false;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    BEGIN
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', dflt, cname)],
                                                 format('removing the bound constraint from %s', dflt), ARRAY[dflt]);
    EXCEPTION WHEN lock_not_available OR query_canceled THEN
        -- (a second cancel: the claim is released all the same)
        left_bound := true;
    END;
    COMMIT;
    PERFORM @extschema@.capacity_convert_unclaim(tbl);
    RAISE EXCEPTION 'matter_capacity: the default partition of % was not emptied: %', qual, why
        USING ERRCODE = coalesce(state, '55000'),
              HINT = CASE WHEN left_bound
                          THEN format('Nothing was moved. Its constraint %I could not be removed yet (the lock was not available): the next rollover removes it; until then a row before the last partition''s end is refused.', cname)
                          ELSE 'The bound constraint was removed; nothing changed. Run it again when the table is less busy.' END;
END
$$;
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_empty_default_undo(regclass, regclass, name, text, text, text) FROM PUBLIC;

CREATE OR REPLACE PROCEDURE @extschema@.capacity_empty_default(tbl regclass, batch_rows integer DEFAULT 10000,
                                                    max_batches integer DEFAULT NULL,
                                                    as_of timestamptz DEFAULT now())
LANGUAGE plpgsql
AS $$
DECLARE
    pol @extschema@.capacity_policy;
    refusal record;
    dflt regclass;
    dq text;
    qual text;
    nsp name;
    rel name;
    owner name;
    typ regtype;
    last_to timestamptz;
    lower_lit text;
    bound timestamptz;
    cname name;
    histname name;
    suffix text;
    defname name;
    keys name[];
    swap text[];
    x record;
    s text;
    state text;
    failed boolean := false;
    t0 timestamptz;
    swap_ms float8;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM @extschema@.capacity_require_grants('capacity_empty_default'::text, ARRAY[
        '@extschema@.capacity_empty_default_refusal(regclass, timestamptz)',
        '@extschema@.capacity_empty_default_undo(regclass, regclass, name, text, text, text)',
        '@extschema@.capacity_historical_suffix(regclass)',
        '@extschema@.capacity_publications_of(regclass[])',
        '@extschema@.capacity_owner_value(regclass, text)',
        '@extschema@.capacity_convert_claim(regclass, text)',
        '@extschema@.capacity_convert_unclaim(regclass)',
        '@extschema@.capacity_run_as_owner(regclass, text[])',
        '@extschema@.capacity_run_bounded(text[], text, regclass[])']::regprocedure[],
        ARRAY['@extschema@.capacity_conversion', '@extschema@.capacity_conversion']::regclass[], ARRAY['INSERT', 'UPDATE']::text[]);
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'matter_capacity: capacity_empty_default cannot run while the server is in recovery'
            USING ERRCODE = '25006', HINT = 'Run it on the primary.';
    END IF;
    IF batch_rows IS NULL OR batch_rows < 1 OR max_batches < 0 THEN
        RAISE EXCEPTION 'matter_capacity: capacity_empty_default: batch_rows % must be positive and max_batches % not negative', batch_rows, max_batches
            USING ERRCODE = '22023', HINT = 'Each batch is one transaction; 10000 rows is typical. max_batches => 0 only makes the default partition the historical partition.';
    END IF;
    CALL @extschema@.capacity_require_commit('capacity_empty_default');
    -- a backfill under way (this one's, interrupted, or a conversion's) goes on
    IF EXISTS (SELECT 1 FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl AND c.state <> 'done') THEN
        IF max_batches IS DISTINCT FROM 0 THEN
            CALL @extschema@.capacity_convert_backfill(tbl, batch_rows, max_batches);
        END IF;
        RETURN;
    END IF;
    -- the bound constraint an interrupted call left (cancelled or killed
    -- between adding it and the swap) refuses rows the default partition
    -- takes: it goes first, whatever is decided next
    SELECT k.conname, k.conrelid::regclass AS rel INTO x FROM pg_constraint k
     WHERE k.conrelid = (SELECT nullif(pt.partdefid, 0) FROM pg_partitioned_table pt WHERE pt.partrelid = tbl)
       AND k.conname = @extschema@.capacity_derived_name((SELECT c.relname FROM pg_class c WHERE c.oid = tbl)::text, 'default_bound')
       AND k.contype = 'c'
       AND obj_description(k.oid, 'pg_constraint') = 'matter_capacity: capacity_empty_default''s bound, removed once the default partition is the historical partition';
    IF FOUND THEN
        PERFORM @extschema@.capacity_convert_claim(tbl, 'capacity_empty_default');
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', x.rel, x.conname)],
                                                 format('removing the bound constraint an interrupted call left on %s', x.rel), ARRAY[x.rel]);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE NOTICE 'capacity_empty_default: removed the constraint % an interrupted call left on %', x.conname, x.rel;
    END IF;
    SELECT * INTO refusal FROM @extschema@.capacity_empty_default_refusal(tbl, as_of);
    IF FOUND THEN
        RAISE EXCEPTION '%', refusal.message USING ERRCODE = refusal.code, HINT = refusal.hint;
    END IF;
    PERFORM @extschema@.capacity_convert_claim(tbl, 'capacity_empty_default');
    SELECT * INTO pol FROM @extschema@.capacity_policy p WHERE p.table_name = tbl;
    SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), a.atttypid::regtype, nullif(pt.partdefid, 0)::regclass
      INTO nsp, rel, owner, typ, dflt
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = pol.time_column
      JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
     WHERE c.oid = tbl;
    qual := format('%I.%I', nsp, rel);
    dq := dflt::text;
    SELECT max(t.range_to) INTO last_to FROM @extschema@.capacity_partition_tree(tbl) t
     WHERE t.level = 1 AND NOT t.is_default;
    lower_lit := CASE WHEN last_to IS NULL THEN 'MINVALUE' ELSE @extschema@.capacity_time_literal(last_to, typ) END;
    -- the backfill makes periods up to the policy's horizon; later rows go
    -- to the default partition at its switch, and the rollover on from there
    bound := @extschema@.capacity_period_start(as_of, pol.granularity, pol.premake + 1);
    cname := @extschema@.capacity_derived_name(rel::text, 'default_bound');
    defname := (SELECT c.relname FROM pg_class c WHERE c.oid = dflt);
    suffix := @extschema@.capacity_historical_suffix(tbl);
    histname := @extschema@.capacity_derived_name(rel::text, suffix);
    SELECT array_agg(a.attname ORDER BY k.n) INTO keys
      FROM pg_index pk, unnest(pk.indkey::smallint[]) WITH ORDINALITY k(att, n), pg_attribute a
     WHERE pk.indrelid = tbl AND pk.indisprimary AND a.attrelid = tbl AND a.attnum = k.att;

    -- 1. the bound, enforced from now on (a brief ACCESS EXCLUSIVE on the
    -- default partition); until the swap a row with no time or one before
    -- the last partition's end, which would have gone to the default
    -- partition, is refused (23514).  2. proven for its rows online
    -- (SHARE UPDATE EXCLUSIVE: no writer waits), as the owner.
    BEGIN
        -- (its comment marks it ours: the rollover removes a leftover by it,
        -- src/rollover.c DEFAULT_BOUND_COMMENT)
        PERFORM @extschema@.capacity_run_bounded(ARRAY[
                    format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NOT NULL%s) NOT VALID', dq, cname, pol.time_column,
                           CASE WHEN last_to IS NULL THEN '' ELSE format(' AND %I >= %s', pol.time_column, lower_lit) END),
                    format('COMMENT ON CONSTRAINT %I ON %s IS %L', cname, dq, 'matter_capacity: capacity_empty_default''s bound, removed once the default partition is the historical partition')],
                    format('adding the bound constraint to %s', dq), ARRAY[dflt]);
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE;
    END;
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    BEGIN
        PERFORM @extschema@.capacity_run_bounded(ARRAY[
                    format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L]::pg_catalog.text[])', qual,
                           format('ALTER TABLE %s VALIDATE CONSTRAINT %I', dq, cname))],
                    format('validating the bound constraint of %s', dq), ARRAY[dflt]);
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        failed := true;
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, s = MESSAGE_TEXT;
    END;
    IF failed THEN
        -- a row that came in between the check and the constraint, a cancel:
        -- the bound must not stay, it refuses rows the default partition takes
        CALL @extschema@.capacity_empty_default_undo(tbl, dflt, cname, qual, s, state);
    END IF;
    COMMIT;

    -- 3. the swap, short and bounded: catalog work only (the constraint
    -- proves the bounds; the new default partition is empty)
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    swap := ARRAY[format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', qual),
                  'SELECT pg_catalog.set_config(''lock_timeout'', ''10ms'', true)',
                  format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', dq),
                  format('ALTER TABLE %s DETACH PARTITION %s', qual, dq),
                  format('ALTER TABLE %s RENAME TO %I', dq, histname)];
    FOR x IN SELECT i.relname FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
              WHERE ix.indrelid = dflt ORDER BY 1 LOOP
        swap := swap || format('ALTER INDEX %I.%I RENAME TO %I', nsp, x.relname, @extschema@.capacity_derived_name(x.relname::text, suffix));
    END LOOP;
    swap := swap || format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', nsp, defname, qual);
    IF owner <> current_user THEN
        swap := swap || format('ALTER TABLE %I.%I OWNER TO %I', nsp, defname, owner);
    END IF;
    swap := swap || format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L]::pg_catalog.text[])', qual,
                           format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%s) TO (MAXVALUE)', qual, nsp, histname, lower_lit));
    t0 := clock_timestamp();
    FOR rnd IN 1 .. 3 LOOP
        failed := false;
        BEGIN
            PERFORM @extschema@.capacity_run_bounded(swap, format('making the default partition of %s its historical partition', qual),
                                                     ARRAY[tbl, dflt]);
            -- the conversion's row in the same transaction, under the lock
            -- timeout too (the table stays locked until the commit); a
            -- failure or a cancel here undoes the swap and then the bound
            PERFORM pg_catalog.set_config('lock_timeout', coalesce(current_setting('matter_capacity.lock_timeout', true), '100ms'), true);
            swap_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
            INSERT INTO @extschema@.capacity_conversion AS c
                (table_name, historical, time_column, granularity, hash_column, hash_partitions, bound,
                 key_columns, state, converted_at, convert_swap_ms)
            VALUES (tbl, format('%I.%I', nsp, histname)::regclass, pol.time_column, pol.granularity, pol.hash_column,
                    pol.hash_partitions, bound, keys, 'converted', clock_timestamp(), swap_ms)
            ON CONFLICT (table_name) DO UPDATE
               SET historical = excluded.historical, staging = NULL, time_column = excluded.time_column,
                   granularity = excluded.granularity, hash_column = excluded.hash_column,
                   hash_partitions = excluded.hash_partitions, bound = excluded.bound, key_columns = excluded.key_columns,
                   state = 'converted', pages_total = NULL, next_page = 0, rows_copied = 0,
                   converted_at = excluded.converted_at, convert_swap_ms = excluded.convert_swap_ms,
                   backfill_started_at = NULL, updated_at = NULL, finished_at = NULL, backfill_swap_ms = NULL, stale = NULL;
        EXCEPTION WHEN query_canceled OR OTHERS THEN
            failed := true;
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, s = MESSAGE_TEXT;
        END;
        EXIT WHEN NOT failed OR state <> '55P03';
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        IF rnd < 3 THEN
            BEGIN
                PERFORM pg_sleep(1);
            EXCEPTION WHEN query_canceled THEN
                -- cancelled between attempts: undone like a failed one
                GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, s = MESSAGE_TEXT;
                EXIT;
            END;
        END IF;
    END LOOP;
    IF failed THEN
        CALL @extschema@.capacity_empty_default_undo(tbl, dflt, cname, qual, s, state);
    END IF;
    COMMIT;
    PERFORM @extschema@.capacity_convert_unclaim(tbl);
    RAISE NOTICE 'capacity_empty_default: the default partition of % is now its historical partition %.% [%, MAXVALUE); the swap held its lock % ms',
                 qual, quote_ident(nsp), quote_ident(histname),
                 coalesce(to_char(last_to AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC', 'MINVALUE'), round(swap_ms::numeric, 1);
    -- 4. its rows into periods, a batch per transaction
    IF max_batches IS DISTINCT FROM 0 THEN
        CALL @extschema@.capacity_convert_backfill(tbl, batch_rows, max_batches);
    END IF;
END
$$;
COMMENT ON PROCEDURE @extschema@.capacity_empty_default IS
    'Empty a large default partition whose rows all follow the last partition: it becomes a historical partition (catalog work under the lock timeout), then capacity_convert_backfill moves its rows into periods, a batch per transaction; the application waits no longer than the lock timeout.';
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_empty_default(regclass, integer, integer, timestamptz) FROM PUBLIC;
