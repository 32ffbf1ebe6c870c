-- capacity_report_html(): the capacity review as one self-contained HTML
-- document (inline CSS, inline SVG; nothing fetched).  Every figure comes
-- from the existing evaluation: capacity_plan_stage (the verdict),
-- capacity_trigger_eval (each trigger's or condition's value and
-- threshold), capacity_plan_forecast_eval (etas, bands, the model drawn by
-- capacity_forecast_path), capacity_forecast_eval (partition runway), the
-- daily rollups (90 days of history, capacity_report_days), the fleet's
-- recorded samples (labels {member}), capacity_explain_result and
-- capacity_decision.  Read-only: no member is polled from here.

-- Text as HTML character data or a quoted attribute value.
CREATE FUNCTION @extschema@.capacity_html(t text)
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
-- are gaps: a new subpath, never a zero); threshold: a dashed line;
-- fc_at/fc_v: the forecast as the model draws it (points of its curve);
-- band_at/band_v: the band as a closed polygon; eta: marked with a
-- vertical line; x runs to x_end; more: further series over the same days
-- (a two-dimensional array, one row per series, named by more_names).
-- y is scaled from half-values, so series near the limits of float8
-- (+-1e308) draw without overflow; NaN and infinities are refused.
CREATE FUNCTION @extschema@.capacity_svg_chart(days timestamptz[], vals double precision[],
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

-- The time a fraction w of the way from t0 to t1 (epoch arithmetic: no
-- interval overflow over long spans).
CREATE FUNCTION @extschema@.capacity_forecast_at(t0 timestamptz, t1 timestamptz, w double precision)
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

-- The forecast as the model draws it, from (as_of, cur) to the threshold
-- at eta: linear, or compounding (multiplicative: a curve) when the fit
-- is; the band between the curves that reach the threshold at the
-- earliest and at the latest eta (no latest: the value stays), closed
-- along the threshold, to x_end.  24 steps per curve.
CREATE FUNCTION @extschema@.capacity_forecast_path(method text, cur double precision, threshold double precision,
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

-- The value at time a of the trend from cur at as_of to threshold at e:
-- a weighted mean (linear) or a weighted mean of logarithms (compounding),
-- so it lies between cur and threshold and never overflows.
CREATE FUNCTION @extschema@.capacity_forecast_value(mult boolean, cur double precision, threshold double precision,
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

-- A daily series for the charts: each UTC day's average from the daily
-- rollup, or, for a day not rolled up yet, from its hourly rollups (up to
-- as_of); NULL for a day without samples (a gap).  labels: the series'
-- labels exactly (the hub's '{}' is not mixed with a fleet member's
-- {"member": ...}).
CREATE FUNCTION @extschema@.capacity_report_days(indicator text, labels jsonb, first_day timestamptz,
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

-- The review with the hot tables as the caller resolves them (bindings:
-- capacity_bindings() on the caller's search path, as capacity_report()
-- passes them): resolved in here, under the pinned search_path, an unbound
-- "Event" would not be found.
CREATE FUNCTION @extschema@.capacity_report_html_at(as_of timestamptz, bindings jsonb, horizon interval, plan text)
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

CREATE FUNCTION @extschema@.capacity_report_html(as_of timestamptz DEFAULT now(),
                                                 horizon interval DEFAULT '6 months',
                                                 plan text DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT @extschema@.capacity_report_html_at(as_of, @extschema@.capacity_bindings(), horizon, plan) $$;
COMMENT ON FUNCTION @extschema@.capacity_report_html(timestamptz, interval, text) IS
    'The capacity review as one self-contained HTML document (inline CSS and SVG, nothing fetched): '
    'capacity_report_html(as_of timestamptz DEFAULT now(), horizon interval DEFAULT ''6 months'', plan text DEFAULT NULL). '
    'Verdict from capacity_stage(as_of, horizon, plan); triggers, values and thresholds from capacity_trigger_eval; '
    '90-day charts from capacity_sample_daily (else capacity_sample_hourly) with the threshold and the forecast (as fitted: linear or compounding) '
    'with its band and eta (capacity_plan_forecast_eval, for any plan); latency, QPS and pools; managed tables'' rows and bytes against the next stage; '
    'partition runway; the fleet (capacity_fleet_member) with each member''s recorded figures and chart when members are registered; '
    'failing EXPLAIN checks; decisions up to as_of as a timeline. Every value from data is HTML-escaped.';

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report_html(timestamptz, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_report_html(timestamptz, interval, text) TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report_days(text, jsonb, timestamptz, integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_report_days(text, jsonb, timestamptz, integer, timestamptz) TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report_html_at(timestamptz, jsonb, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_report_html_at(timestamptz, jsonb, interval, text) TO pg_monitor;
