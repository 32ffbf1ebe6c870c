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

-- Mutating functions refuse on a hot standby before they try to write,
-- like the C entry points (require_not_in_recovery): 25006, naming recovery.
CREATE FUNCTION @extschema@.capacity_refuse_in_recovery(what text)
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

CREATE FUNCTION @extschema@.capacity_record(indicator text, value double precision,
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
    -- A late value: the sampler rolls up only the last two hours
    -- (sampler.c, roll_up_hours), so an older hour is rolled up here, for
    -- this series alone, and its UTC day again (capacity_roll_up_days: the
    -- day's hourly rows, at most 24 per series).  Cost: one hour of one
    -- series plus one day; a value pushed on time costs nothing more.
    late_hour := date_bin('1 hour', sampled_at, origin);
    IF late_hour < date_bin('1 hour', now() - interval '2 hours', origin) THEN
        INSERT INTO @extschema@.capacity_sample_hourly AS h (indicator, labels, hour, min, max, avg, last, count)
        SELECT s.indicator, s.labels, late_hour, min(s.value), max(s.value), avg(s.value),
               (array_agg(s.value ORDER BY s.sampled_at DESC))[1], count(*)
          FROM @extschema@.capacity_sample s
         WHERE s.indicator = capacity_record.indicator AND s.labels = capacity_record.labels
           AND s.sampled_at >= late_hour AND s.sampled_at < late_hour + interval '1 hour'
         GROUP BY 1, 2
        ON CONFLICT ON CONSTRAINT capacity_sample_hourly_pkey DO UPDATE SET min = EXCLUDED.min,
           max = EXCLUDED.max, avg = EXCLUDED.avg, last = EXCLUDED.last, count = EXCLUDED.count;
        PERFORM @extschema@.capacity_roll_up_days(sampled_at, sampled_at);
    END IF;
END
$$;

-- Rows the conversion's backfill copied are not the application's: at its
-- switch (60_convert.sql, under its locks) the copies join the table; this
-- records how many, so the sampler takes them out of table_rows_inserted
-- (see sampler.c).  Every insert into the staging leaves (copies, replayed
-- writes) the sampler has not already counted under the staging table,
-- including this session's not yet flushed statistics, plus the rows of the
-- staging default partition, which the switch inserts into the table; less
-- what the application wrote into the historical partition since the last
-- sample, which the switch detaches before a sampler could count it.
CREATE FUNCTION @extschema@.capacity_note_backfill_copies(tbl regclass)
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

-- Pool size of a role for pool_utilization (NULL removes the override).
CREATE FUNCTION @extschema@.capacity_set_pool_size(role_name regrole, pool_size integer)
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
