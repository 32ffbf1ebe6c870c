-- Indicator functions: sampling, pushing, registering.

CREATE FUNCTION @extschema@.capacity_sample_now(as_of timestamptz DEFAULT now())
RETURNS integer
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_sample_now';
COMMENT ON FUNCTION @extschema@.capacity_sample_now IS
    'Sample every enabled built-in indicator and probe once; returns the number of samples written.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_sample_now(timestamptz) FROM PUBLIC;

CREATE FUNCTION @extschema@.capacity_register_probe(indicator text, query text, unit text DEFAULT NULL)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_register_probe';
COMMENT ON FUNCTION @extschema@.capacity_register_probe IS
    'Register a probe: a single SELECT returning one number or (labels jsonb, value) rows, run as its owner.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_register_probe(text, text, text) FROM PUBLIC;

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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_register_push(text, text, text) FROM PUBLIC;

-- The one write path of a sample (sampler.c, write_samples): the raw
-- sample and the series' newest value.  For callers that checked it.
CREATE FUNCTION @extschema@.capacity_write_sample(indicator text, labels jsonb, sampled_at timestamptz,
                                                  value double precision)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_write_sample';
COMMENT ON FUNCTION @extschema@.capacity_write_sample IS
    'Internal (not for PUBLIC): write one sample and keep the newest value of its series, as the sampler writes (src/sampler.c); no checks.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_write_sample(text, jsonb, timestamptz, double precision) FROM PUBLIC;

-- The same write path in bulk (the import): element i of the arrays is
-- sample i.
CREATE FUNCTION @extschema@.capacity_write_samples(indicators text[], labels jsonb[], sampled_at timestamptz[],
                                                   "values" double precision[])
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_write_samples';
COMMENT ON FUNCTION @extschema@.capacity_write_samples IS
    'Internal (not for PUBLIC): write samples in bulk as the sampler writes (src/sampler.c): arrays of one length, element i is sample i; '
    'raw samples and the newest value of each series; no checks. Returns the series whose newest value was written.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_write_samples(text[], jsonb[], timestamptz[], double precision[]) FROM PUBLIC;

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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_record(text, double precision, jsonb, timestamptz) FROM PUBLIC;

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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_set_pool_size(regrole, integer) FROM PUBLIC;

-- The one rollup path (rollup.c), for what writes samples outside a
-- sampling: late pushes (capacity_record) and the import.  The hourly
-- rollups (min, max, avg, last, count) of the hours from_ts .. to_ts
-- touch, from the raw samples up to to_ts, as the sampler rolls up the
-- hours since its previous sampling.
CREATE FUNCTION @extschema@.capacity_roll_up_hours(from_ts timestamptz, to_ts timestamptz)
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_roll_up_hours';
COMMENT ON FUNCTION @extschema@.capacity_roll_up_hours IS
    'Recompute the hourly rollups of the hours from_ts .. to_ts touches from the raw samples up to to_ts, as the sampler does (the daily ones: capacity_roll_up_days); returns the rollups written.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_roll_up_hours(timestamptz, timestamptz) FROM PUBLIC;

-- The daily rollups of the UTC days from_ts .. to_ts touches, from the
-- hourly rollups (the sampler has its days rolled up after each sampling;
-- call it over a range after loading or correcting hourly history), with
-- the exact p95 of a complete day's raw samples for the indicators in
-- capacity_daily_p95.
CREATE FUNCTION @extschema@.capacity_roll_up_days(from_ts timestamptz, to_ts timestamptz)
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_roll_up_days';
COMMENT ON FUNCTION @extschema@.capacity_roll_up_days IS
    'Recompute the daily rollups (what forecasts fit) of the UTC days from_ts .. to_ts touches from the hourly rollups; returns the rollups written. '
    'p95: the exact p95 of a complete day''s raw samples, kept for the indicators in capacity_daily_p95 (those an N-day plan condition reads by p95; else NULL). '
    'Error 22023 unless from_ts <= to_ts, both finite.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_roll_up_days(timestamptz, timestamptz) FROM PUBLIC;
