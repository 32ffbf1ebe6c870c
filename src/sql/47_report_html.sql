-- capacity_report_html(): the capacity review as one self-contained HTML
-- document (inline CSS, inline SVG; nothing fetched).  Every figure comes
-- from the existing evaluation: capacity_plan_stage (the verdict),
-- capacity_trigger_eval (each trigger's value and threshold),
-- capacity_forecast_eval (etas, bands, partition runway), the daily
-- rollups (history) and capacity_decision (the log).

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

CREATE FUNCTION @extschema@.capacity_report_html(as_of timestamptz DEFAULT now(),
                                                 horizon interval DEFAULT '6 months',
                                                 plan text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bindings jsonb := @extschema@.capacity_bindings();
    p text := @extschema@.capacity_plan_resolve(plan);
    s record;
    r record;
    f record;
    evals @extschema@.capacity_trigger_row[];
    fcs @extschema@.capacity_forecast_row[];
    today timestamptz := date_trunc('day', as_of AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    days timestamptz[];
    vals double precision[];
    lbl text;
    doc text;
    rows text := '';
    charts text := '';
    maxrun double precision;
    n integer := 0;
    x_end timestamptz;
    nodata text[] := '{}';
BEGIN
    SELECT * INTO s FROM @extschema@.capacity_plan_stage(as_of, bindings, horizon, p);
    evals := ARRAY(SELECT e FROM @extschema@.capacity_trigger_eval(as_of, bindings,
                                  CASE WHEN p = 'matter-six-stage' THEN NULL ELSE p END) e);
    -- forecasts are of the six-stage ladder's triggers and the leading
    -- indicators (capacity_forecast); a plan's condition shows one when
    -- its indicator, labels and threshold are the same
    fcs := ARRAY(SELECT fx FROM @extschema@.capacity_forecast_eval(as_of, horizon, bindings,
                    ARRAY(SELECT e FROM @extschema@.capacity_trigger_eval(as_of, bindings) e)) fx);

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
        || 'svg .band{fill:#8250df;fill-opacity:.15}svg .eta{stroke:#8250df;stroke-width:1}svg .bar{fill:#2da44e}svg .bar.short{fill:#cf222e}'
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
    FOR r IN SELECT e.*, fr.eta, fr.eta_earliest, fr.eta_latest, fr.status AS fstatus, fr.current_value AS fcur
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
        -- 30 days of daily averages (the daily rollups; a day not rolled
        -- up yet from its hourly rollups); NULL: no samples, a gap
        SELECT array_agg(g.day ORDER BY g.day),
               array_agg(coalesce((SELECT avg(d.avg) FROM @extschema@.capacity_sample_daily d
                                    WHERE d.indicator = r.indicator AND d.labels @> r.labels AND d.day = g.day),
                                  (SELECT avg(hh.avg) FROM @extschema@.capacity_sample_hourly hh
                                    WHERE hh.indicator = r.indicator AND hh.labels @> r.labels
                                      AND hh.hour >= g.day AND hh.hour < least(g.day + interval '1 day', as_of)))
                         ORDER BY g.day)
          INTO days, vals
          FROM generate_series(today - interval '29 days', today, interval '1 day') AS g(day);
        x_end := CASE WHEN r.fstatus IN ('forecast', 'beyond horizon')
                      THEN least(greatest(coalesce(r.eta_latest, as_of + horizon), r.eta), as_of + horizon) ELSE as_of END;
        IF NOT EXISTS (SELECT 1 FROM unnest(vals) v WHERE v IS NOT NULL) THEN
            nodata := nodata || r.trigger_name;
            CONTINUE;
        END IF;
        n := n + 1;
        charts := charts || format('<div class="card"><h3>%s</h3><p>%s%s &middot; now %s &middot; threshold %s %s</p>',
                      @extschema@.capacity_html(r.trigger_name),
                      @extschema@.capacity_html(r.indicator), CASE WHEN lbl IS NULL THEN '' ELSE ' (' || @extschema@.capacity_html(lbl) || ')' END,
                      CASE WHEN r.value IS NULL THEN 'no value (' || @extschema@.capacity_html(r.status) || ')'
                           ELSE @extschema@.capacity_html(@extschema@.capacity_fmt(r.value)) END,
                      @extschema@.capacity_html(r.comparator), @extschema@.capacity_html(@extschema@.capacity_fmt(r.threshold)))
            || @extschema@.capacity_svg_chart(days, vals, r.threshold, as_of, r.fcur,
                   CASE WHEN r.fstatus IN ('forecast', 'beyond horizon') THEN r.eta END,
                   r.eta_earliest, r.eta_latest, x_end)
            || '</div>';
    END LOOP;
    doc := doc || '<h2>Triggers</h2><table id="triggers"><tr><th>stage</th><th>trigger</th><th>status</th><th>value</th>'
        || '<th>threshold</th><th>forecast eta (band)</th><th>what it measures</th></tr>' || rows
        || '</table><p class="sub">* threshold still at its default SLO setting (capacity_set_threshold)</p>';
    doc := doc || '<h2>History and forecast</h2><p class="legend sub">'
        || '<span><i class="sw" style="border-color:#0969da"></i>daily average, last 30 days (gaps: no samples)</span>'
        || '<span><i class="sw" style="border-color:#cf222e;border-top-style:dashed"></i>threshold</span>'
        || '<span><i class="sw" style="border-color:#8250df;border-top-style:dotted"></i>forecast to the eta, shaded band</span></p>'
        || CASE WHEN n = 0 THEN '<p>No metric trigger has samples in the last 30 days.</p>' ELSE '<div class="charts">' || charts || '</div>' END
        || CASE WHEN cardinality(nodata) = 0 THEN ''
                ELSE '<p class="sub" id="nodata">No samples in the last 30 days (not charted): '
                     || @extschema@.capacity_html(array_to_string(ARRAY(SELECT DISTINCT x FROM unnest(nodata) x ORDER BY 1), ', ')) || '</p>' END;

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

    -- decisions up to as_of
    doc := doc || '<h2>Decisions</h2><table id="decisions"><tr><th>when (UTC)</th><th>decision</th><th>stage</th><th>evaluation</th><th>by</th><th>note</th></tr>';
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
COMMENT ON FUNCTION @extschema@.capacity_report_html(timestamptz, interval, text) IS
    'The capacity review as one self-contained HTML document (inline CSS and SVG, nothing fetched): '
    'capacity_report_html(as_of timestamptz DEFAULT now(), horizon interval DEFAULT ''6 months'', plan text DEFAULT NULL). '
    'Verdict from capacity_stage(as_of, horizon, plan); triggers, values and thresholds from capacity_trigger_eval; '
    '30-day charts from capacity_sample_daily (else capacity_sample_hourly) with the threshold and the capacity_forecast eta and band; '
    'partition runway from capacity_forecast; decisions from capacity_decision up to as_of. Every value from data is HTML-escaped.';

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report_html(timestamptz, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_report_html(timestamptz, interval, text) TO pg_monitor;
