-- The one check of the time arguments every public function takes: as_of
-- (the time a figure is evaluated at) and horizon (how far a forecast looks
-- ahead).  Evaluations walk day by day back from as_of (N-day rules,
-- report charts) and forward to as_of + horizon: an infinite as_of made
-- generate_series unbounded and filled the disk with temp files (review
-- F2), a time near the end of the timestamp range overflowed with a bare
-- "timestamp out of range".  So as_of is a finite time in the years
-- 1000..9998 (the range the C functions take: check_time_in_range in
-- src/periods.c, where partition names need it), horizon a positive
-- interval of at most 10 years; each is named in the error with the
-- function that refused it.

CREATE FUNCTION @extschema@.capacity_check_time(fn text, as_of timestamptz,
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
