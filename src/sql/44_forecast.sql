-- Forecasting: when would each metric trigger start to hold, and when
-- would each managed table run out of partitions?
--
-- The fit itself (Theil-Sen, linear or multiplicative, with a 95% band) is
-- C: capacity_fit_trend in src/forecast.c.  Which points it is given is
-- decided here, from the daily rollups (capacity_sample_daily, made from
-- the hourly ones) of the last matter_capacity.forecast_lookback_days
-- complete UTC days.  See
-- docs/forecasting.md for what each kind of trigger is fitted on.

CREATE TYPE @extschema@.capacity_trend AS (
    points        integer,
    method        text,              -- linear | multiplicative
    level         double precision,  -- fitted value at t = 0
    slope         double precision,  -- per day; per day of ln(value) if multiplicative
    slope_low     double precision,  -- 95% band of the slope
    slope_high    double precision,
    fit_error     double precision,  -- mean absolute residual, largest tenth left out
    days          double precision,  -- until the threshold is crossed
    days_earliest double precision,
    days_latest   double precision,
    other_days    double precision,  -- crossing by the other model when it fits nearly as well
    verdict       text);             -- insufficient data | trend | reached | moving away | flat or too noisy

CREATE FUNCTION @extschema@.capacity_fit_trend(t double precision[], y double precision[],
                                               threshold double precision DEFAULT NULL,
                                               comparator text DEFAULT '>',
                                               anchor double precision DEFAULT NULL,
                                               min_points integer DEFAULT 7)
RETURNS @extschema@.capacity_trend
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_fit_trend';
COMMENT ON FUNCTION @extschema@.capacity_fit_trend IS
    'Robust trend (Theil-Sen, linear or multiplicative by fit) of y over t in days, and the days until it crosses threshold.';

CREATE TYPE @extschema@.capacity_forecast_row AS (
    stage            integer,
    trigger_name     text,
    indicator        text,
    labels           jsonb,
    current_value    double precision,
    threshold        double precision,
    comparator       text,
    trend_per_day    double precision,
    daily_growth_pct double precision,
    method           text,
    eta              timestamptz,
    days_left        numeric,
    eta_earliest     timestamptz,
    eta_latest       timestamptz,
    status           text,
    days_of_data     integer,
    note             text);

-- The forecast behind capacity_forecast() and the plan decision of
-- capacity_stage(), for the six-stage ladder (plan_name NULL) or any
-- plan's conditions (plan_name: an installed plan).  evals:
-- capacity_trigger_eval at as_of for the same plan (its firing rows make a
-- forecast "firing"); min_stage: only triggers (conditions) of that stage
-- (step ordinal) and above, no leading indicators and no runway (what the
-- stage evaluation needs); only_conditions: only those triggers or
-- conditions (NULL: all; the stage evaluation of a plan forecasts the
-- conditions of its moves ahead only).  A condition over N consecutive UTC days is
-- fitted on its daily aggregate (avg, max, min; p95 on the day's max: the
-- rollups keep a p95 only for the complete days of the indicators a
-- condition reads it of) and fires N days after the crossing: its eta
-- is the crossing plus N days.
CREATE FUNCTION @extschema@.capacity_plan_forecast_eval(as_of timestamptz, horizon interval, bindings jsonb,
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

-- The six-stage ladder's forecast (as in 1.0).
CREATE FUNCTION @extschema@.capacity_forecast_eval(as_of timestamptz, horizon interval, bindings jsonb,
                                                   evals @extschema@.capacity_trigger_row[],
                                                   min_stage integer DEFAULT NULL)
RETURNS SETOF @extschema@.capacity_forecast_row
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM @extschema@.capacity_plan_forecast_eval(as_of, horizon, bindings, evals, min_stage, NULL::text) $$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_forecast_eval(timestamptz, interval, jsonb, @extschema@.capacity_trigger_row[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_forecast_eval(timestamptz, interval, jsonb, @extschema@.capacity_trigger_row[], integer) TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_forecast_eval(timestamptz, interval, jsonb, @extschema@.capacity_trigger_row[], integer, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_plan_forecast_eval(timestamptz, interval, jsonb, @extschema@.capacity_trigger_row[], integer, text, text[]) TO pg_monitor;

CREATE FUNCTION @extschema@.capacity_forecast(as_of timestamptz DEFAULT now(),
                                              horizon interval DEFAULT '6 months')
RETURNS SETOF @extschema@.capacity_forecast_row
LANGUAGE sql STABLE
AS $$
    SELECT * FROM @extschema@.capacity_forecast_eval(as_of, horizon, @extschema@.capacity_bindings(),
        ARRAY(SELECT e FROM @extschema@.capacity_trigger_eval(as_of, @extschema@.capacity_bindings()) e))
$$;
COMMENT ON FUNCTION @extschema@.capacity_forecast IS
    'When each metric trigger and leading indicator is projected to fire (trend, eta, band, status), and the partition runway.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_forecast(timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_forecast(timestamptz, interval) TO pg_monitor;
