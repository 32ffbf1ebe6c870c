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
-- {"table": name}.  Shared by the evaluation and the forecast.  plan_name
-- NULL: the six-stage ladder's capacity_trigger; a plan's name: that
-- plan's conditions (stage is their step's ordinal; days and daily are
-- set for N-consecutive-UTC-day conditions, whose sustain is N days).
-- PL/pgSQL rather than SQL, and its one generic plan kept for the session:
-- an evaluation calls it six or seven times, and a SQL function with SET is
-- neither inlined nor kept planned (0.3-0.5 ms of planning a call); the
-- tables are small, so the plan does not need the values.
CREATE FUNCTION @extschema@.capacity_trigger_resolved(bindings jsonb, plan_name text)
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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_resolved(jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_trigger_resolved(jsonb, text) TO pg_monitor;

-- The six-stage ladder's triggers (as in 1.0).
CREATE FUNCTION @extschema@.capacity_trigger_resolved(bindings jsonb)
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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_resolved(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_trigger_resolved(jsonb) TO pg_monitor;

-- One trigger on one series at as_of.
CREATE TYPE @extschema@.capacity_trigger_row AS (
    trigger_name text, stage integer, indicator text, labels jsonb,
    value double precision, deciding_value double precision,
    threshold double precision, threshold_is_default boolean,
    comparator text, sustain interval, samples bigint,
    window_start timestamptz, status text, description text);

-- One UTC day of one series: its aggregates (conditions over N days).
CREATE TYPE @extschema@.capacity_day_point AS (
    indicator text, labels jsonb, day timestamptz, avg double precision,
    max double precision, min double precision, p95 double precision, n bigint);

-- First and last value of a cumulative counter in a growth window.
CREATE TYPE @extschema@.capacity_growth_point AS (
    name text, labels jsonb, first_at timestamptz, first_v double precision,
    last_at timestamptz, last_v double precision);

-- Does value breach threshold under a trigger's comparator (> >= < <=)?
-- The one place the comparator is read; a plain SQL expression, so the
-- planner inlines it into the evaluation.
CREATE FUNCTION @extschema@.capacity_breaches(value double precision, comparator text,
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

-- One row per trigger and series: its value, threshold and status at as_of.
--
-- Samples are read first, by statements planned with their bound values
-- (EXECUTE ... USING), so capacity_sample is pruned to the one or two day
-- partitions the windows touch: one scan for every window of an hour or
-- so, and two short index probes per growth series (first and last value
-- of the counter).  The set logic then runs over those arrays with a
-- cached plan.  Conditions over N consecutive UTC days read each day's
-- aggregate of the N complete days before as_of's day (the daily rollups,
-- else the raw samples; a day's p95 is the exact one either way):
-- firing when every one of the N days breaches, ok as soon as one day is
-- under, insufficient data when days are missing and none is under.
-- plan_name: as in capacity_trigger_resolved.  Its statements keep one
-- generic plan from the first call (planning the final query costs more
-- than running it: five custom plans per session first cost 1-4 ms each;
-- the reads of capacity_sample are EXECUTEd, so still planned with their
-- values and pruned), and without nested loops: that plan cannot see how
-- many samples the array holds (it guesses 100 of the benchmark's 1,320)
-- and would compare every sample with every series (26,400 pairs, 2.8 ms)
-- instead of hashing them.
CREATE FUNCTION @extschema@.capacity_trigger_eval(as_of timestamptz, bindings jsonb, plan_name text)
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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_eval(timestamptz, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_trigger_eval(timestamptz, jsonb, text) TO pg_monitor;

-- The six-stage ladder's triggers (as in 1.0).
CREATE FUNCTION @extschema@.capacity_trigger_eval(as_of timestamptz, bindings jsonb)
RETURNS SETOF @extschema@.capacity_trigger_row
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.capacity_trigger_eval(as_of, bindings, NULL::text) $$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_eval(timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_trigger_eval(timestamptz, jsonb) TO pg_monitor;

-- Which plan: NULL is the active one; an unknown name is an error.
CREATE FUNCTION @extschema@.capacity_plan_resolve(plan_name text)
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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_resolve(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_plan_resolve(text) TO pg_monitor;
