-- Issue 14: measurements the presets need.  History imported from the
-- monitoring system already in use (capacity_import_samples), written the
-- way the sampler writes: raw samples, the newest value of each series,
-- hourly and daily rollups; the rows deleted from each table; tenant
-- shares; the top statement's share of execution time.

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

INSERT INTO @extschema@.capacity_indicator (name, unit, source, description) VALUES
 ('table_rows_deleted',        'rows',  'builtin', 'Rows deleted from each partitioned table (cumulative counter from the leaves'' n_tup_del; default partitions left out), labels {table}'),
 ('tenant_top_share',          'ratio', 'builtin', 'Share (0..1) of the rows of the current and previous period written by the largest tenant, from a bounded sample, labels {table}'),
 ('tenant_top10_share',        'ratio', 'builtin', 'Share (0..1) of those rows written by the ten largest tenants, labels {table}'),
 ('tenant_top_share_stderr',   'ratio', 'builtin', 'Standard error of tenant_top_share (0 when the window was read whole), labels {table}'),
 ('tenant_top10_share_stderr', 'ratio', 'builtin', 'Standard error of tenant_top10_share (0 when the window was read whole), labels {table}'),
 ('tenant_count',              'count', 'builtin', 'Tenants with rows in the current and previous period (exact, or estimated from the sample: seen plus Chao1), labels {table}'),
 ('tenant_rows_p50',           'rows',  'builtin', 'Median rows per tenant in the current and previous period (tenants seen in the sample), labels {table}'),
 ('tenant_rows_p99',           'rows',  'builtin', '99th percentile of rows per tenant in the current and previous period (tenants seen), labels {table}'),
 ('statement_top_share',       'ratio', 'builtin', 'Share (0..1) of execution time between two samples taken by the top statement (pg_stat_statements, top level), labels {queryid}');

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
--   * older samples, within matter_capacity.rollup_retention_days, end in
--     the hourly rollups only (the sampler keeps no raw samples that old):
--     written and rolled up as raw samples, then deleted, as retention
--     would have; an hour that already has a rollup is left as it is;
--   * capacity_latest_sample takes the newest value of each series when it
--     is newer than the one there (raw samples and newest values are
--     written by the sampler's write path, capacity_write_samples; the
--     rollups by the one rollup path, rollup.c);
--   * the daily rollups of the days touched are recomputed
--     (capacity_roll_up_days), so forecasts and sustained triggers work at
--     once.
CREATE FUNCTION @extschema@.capacity_import_load(p_indicators text[], p_labels jsonb[],
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
CREATE FUNCTION @extschema@.capacity_import_samples(indicator text, labels jsonb,
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
CREATE FUNCTION @extschema@.capacity_import_samples(source regclass, as_of timestamptz DEFAULT now())
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
