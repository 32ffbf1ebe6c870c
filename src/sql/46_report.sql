-- capacity_report(): the weekly capacity review as text, one line per row.

-- Eight-level sparkline of values scaled from 0 to hi.  The level is
-- clamped in double precision before it becomes an integer, so values
-- near the limits of float8 (+-1e308) draw as the lowest or highest bar
-- instead of overflowing; NaN and infinities are refused.
CREATE FUNCTION @extschema@.capacity_sparkline(vals double precision[], hi double precision)
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

-- A number as a person reads it: whole above 100, else up to 6 decimals.
CREATE FUNCTION @extschema@.capacity_fmt(v double precision)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN v IS NULL THEN ''
                WHEN v IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) OR abs(v) >= 1e15 THEN v::text
                WHEN abs(v) >= 100 THEN round(v::numeric)::text
                ELSE rtrim(rtrim(round(v::numeric, CASE WHEN abs(v) >= 1 THEN 2 ELSE 6 END)::text, '0'), '.') END
$$;

-- The review of a plan (plan_name: installed; NULL: the active one): the
-- verdict of capacity_stage(plan => ...), the plan's triggers or
-- conditions with their sparklines and forecasts, runway, EXPLAIN checks
-- and the decisions.  For the six-stage ladder the text is 1.0's.
CREATE FUNCTION @extschema@.capacity_report_at(as_of timestamptz, bindings jsonb,
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

-- The six-stage ladder's review (as in 1.0): the active plan's.
CREATE FUNCTION @extschema@.capacity_report_at(as_of timestamptz, bindings jsonb,
                                               horizon interval DEFAULT '6 months')
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM @extschema@.capacity_report_at(as_of, bindings, horizon, NULL::text) $$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report_at(timestamptz, jsonb, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_report_at(timestamptz, jsonb, interval) TO pg_monitor;

CREATE FUNCTION @extschema@.capacity_report(as_of timestamptz DEFAULT now(),
                                            horizon interval DEFAULT '6 months')
RETURNS SETOF text
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.capacity_report_at(as_of, @extschema@.capacity_bindings(), horizon, NULL::text) $$;
COMMENT ON FUNCTION @extschema@.capacity_report(timestamptz, interval) IS
    'The weekly capacity review of the active plan as text: verdict, triggers with 30-day sparklines, forecasts, runway, decisions.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report(timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_report(timestamptz, interval) TO pg_monitor;

-- capacity_report(as_of, horizon, 'tiers-abc'): the review of any
-- installed plan.  No defaults: a third argument with one would make
-- capacity_report() and capacity_report(as_of) ambiguous with the
-- two-argument form, whose signature 1.0 published.
CREATE FUNCTION @extschema@.capacity_report(as_of timestamptz, horizon interval, plan text)
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
