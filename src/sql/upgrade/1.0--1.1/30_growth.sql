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
           CASE WHEN t.aggregate = 'growth' THEN t.sustain / 2 ELSE interval '0' END AS lag_by,
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
 WHERE min_stage IS NULL
 ORDER BY 1 NULLS LAST, 2, 4;
END
$fn$;
