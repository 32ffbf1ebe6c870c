-- capacity_report_html(): structure of the HTML review on pinned data read
-- at as_of = 2032-06-01 00:00 UTC (nothing else in the suite samples 2032).
CREATE SCHEMA rh;
SET search_path = rh, public;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
SELECT capacity_set_stage(1, 'report html tests');
-- 30 days of hourly rollups (and the daily ones made from them):
-- read_qps climbing 1.5/day to 480 (forecast to cross 500 in the horizon),
-- cpu_utilization at 65 (over 50, firing) with four days missing
-- (a gap, not zero), pool_utilization flat at 40
INSERT INTO capacity_sample_hourly (indicator, labels, hour, min, max, avg, last, count)
SELECT i, '{}', h, v, v, v, v, 60
  FROM (SELECT h, extract(epoch FROM timestamptz '2032-06-01' - h) / 86400 AS d
          FROM generate_series(timestamptz '2032-05-02', '2032-05-31 23:00', interval '1 hour') h) s,
       LATERAL (VALUES ('read_qps', 480 - 1.5 * d),
                       ('cpu_utilization', CASE WHEN d BETWEEN 10 AND 13 THEN NULL ELSE 65 END),
                       ('pool_utilization', 40)) v(i, v)
 WHERE v IS NOT NULL;
SELECT capacity_roll_up_days('2032-05-01', '2032-06-01');
-- the last hour's raw samples (what the sustained windows read)
INSERT INTO capacity_sample (indicator, labels, sampled_at, value)
SELECT i, '{}', t, v
  FROM generate_series(timestamptz '2032-05-31 22:50', '2032-06-01 00:00', interval '5 minutes') t,
       (VALUES ('read_qps', 480.0), ('cpu_utilization', 65.0), ('pool_utilization', 40.0)) v(i, v);
INSERT INTO capacity_latest_sample (indicator, labels, sampled_at, value)
VALUES ('read_qps', '{}', '2032-06-01', 480), ('cpu_utilization', '{}', '2032-06-01', 65),
       ('pool_utilization', '{}', '2032-06-01', 40)
ON CONFLICT (indicator, labels) DO UPDATE SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value;
-- a hostile note, and a decision after as_of that the review must not show
SELECT capacity_decide('stay', '<script>document.title="pwned"</script></svg> & "quoted"', '2032-05-30 12:00+00');
SELECT capacity_decide('stay', 'decided after as_of', '2032-06-02 12:00+00');

CREATE TEMP TABLE doc AS SELECT capacity_report_html('2032-06-01 00:00+00') AS h;
-- deterministic for a pinned as_of
SELECT h = capacity_report_html('2032-06-01 00:00+00') AS same_twice FROM doc;
-- one document, its verdict (capacity_stage's), the stage and its triggers
SELECT h LIKE '<!DOCTYPE html><html lang="en">%</html>' AS one_document,
       (SELECT decision FROM capacity_stage('2032-06-01 00:00+00')) AS decision,
       h LIKE '%<div class="verdict v-promote" id="verdict"><div class="d">promote</div>%' AS verdict_shown,
       h LIKE '%Firing: <b>primary_cpu_sustained</b>%' AS firing_shown,
       h LIKE '%<td>primary_cpu_sustained</td><td class="st-firing">firing</td><td class="n">65</td><td class="n">&gt; 50%' AS cpu_value_vs_threshold
  FROM doc;
-- one chart per metric trigger with samples (3, in #history), the pool
-- and QPS charts (#workload), the others listed; one runway bar per
-- managed table and the decisions' timeline; a series holds its days with samples (29
-- for read_qps: as_of's own day has none yet; 26 for cpu: the four days
-- missing are a gap, a new subpath); the threshold line, the forecast
-- band and the eta where capacity_forecast puts it
SELECT (SELECT count(*) FROM regexp_matches(h, '<svg class="chart"', 'g')) AS charts,
       (SELECT count(*) FROM regexp_matches(substring(h FROM 'id="history">(.*?)<p class="sub" id="nodata"'), '<svg class="chart"', 'g')) AS history_charts,
       (SELECT count(*) FROM regexp_matches(substring(h FROM 'id="workload">(.*?)<h2>'), '<svg class="chart"', 'g')) AS workload_charts,
       h ~ '<p class="sub" id="nodata">No samples in the last 90 days \(not charted\): [^<]*read_p99_over_baseline' AS empty_ones_listed,
       (SELECT count(*) FROM regexp_matches(h, '<svg', 'g'))
         - (SELECT count(*) FROM regexp_matches(h, '<svg class="(chart|timeline)"', 'g'))
         = (SELECT count(*) FROM capacity_policy) AS runway_bars,
       (SELECT count(*) FROM regexp_matches(h, '</svg>', 'g')) = (SELECT count(*) FROM regexp_matches(h, '<svg', 'g')) AS closed
  FROM doc;
SELECT (regexp_match(h, '<h3>read_qps_sustained</h3>.*?<path class="series s1" data-points="(\d+)"'))[1] AS read_qps_points,
       (regexp_match(h, '<h3>primary_cpu_sustained</h3>.*?<path class="series s1" data-points="(\d+)" d="([^"]*)"'))[1] AS cpu_points,
       (SELECT count(*) FROM regexp_matches((regexp_match(h, '<h3>primary_cpu_sustained</h3>.*?<path class="series s1" data-points="\d+" d="([^"]*)"'))[1], 'M', 'g')) AS cpu_subpaths,
       h ~ '<h3>read_qps_sustained</h3>.*?<line class="thr"' AS read_qps_threshold_line,
       (regexp_match(h, '<h3>read_qps_sustained</h3>.*?eta (\d{4}-\d\d-\d\d)'))[1] AS read_qps_eta_on_chart,
       (SELECT eta::date FROM capacity_forecast('2032-06-01 00:00+00') WHERE trigger_name = 'read_qps_sustained') AS forecast_eta,
       h ~ '<h3>read_qps_sustained</h3>.*?<polygon class="band"' AS band_drawn
  FROM doc;
-- coordinates where the data says: plot x 62..548 over the 90 days
-- 2032-03-04 .. as_of, y 146 (lo = 0) up to 10 (hi = 8 % over the
-- largest of series and threshold: 80 * 1.08); the first day with data,
-- 2032-05-02, is day 59 of 90: x = 62 + 59 * 86400 / (89 days + 0 h) * 486
SELECT (regexp_match(h, '<h3>pool_utilization</h3>.*?<line class="thr" x1="62" x2="548" y1="([0-9.]+)"'))[1] AS pool_threshold_y,
       round(146 - 80 / 86.4 * 136, 1) AS expected_threshold_y,
       (regexp_match(h, '<h3>pool_utilization</h3>.*?<path class="series s1" data-points="\d+" d="M([0-9.]+) ([0-9.]+) '))[2] AS pool_series_y,
       round(146 - 40 / 86.4 * 136, 1) AS expected_series_y,
       (regexp_match(h, '<h3>pool_utilization</h3>.*?<path class="series s1" data-points="\d+" d="M([0-9.]+) '))[1] AS first_day_x,
       round(62 + 59 / 89.0 * 486, 1) AS expected_first_day_x,
       (regexp_match(h, '<h3>pool_utilization</h3>.*?<text x="62" y="164" class="ax">([0-9-]+)<'))[1] AS first_day_label
  FROM doc;
-- the eta line where capacity_forecast puts it: x runs from 2032-03-04 to
-- the chart's end (the band's latest eta, within the horizon)
SELECT (regexp_match(h, '<h3>read_qps_sustained</h3>.*?<line class="eta" x1="([0-9.]+)"'))[1] AS eta_x,
       round((62 + extract(epoch FROM f.eta - '2032-03-04'::timestamptz)
                  / extract(epoch FROM least(greatest(coalesce(f.eta_latest, '2032-12-01'), f.eta), '2032-12-01'::timestamptz) - '2032-03-04'::timestamptz)
                  * 486)::numeric, 1) AS expected_eta_x,
       (regexp_match(h, '<h3>read_qps_sustained</h3>.*?<polyline class="fc" data-points="(\d+)"'))[1] AS forecast_points
  FROM doc, capacity_forecast('2032-06-01 00:00+00') f WHERE f.trigger_name = 'read_qps_sustained';
-- a compounding forecast is a curve: from 100 to 200 over 10 days its
-- middle point is 100 * sqrt(2), not 150; a linear one is the chord
SELECT round((fc_v[13])::numeric, 2) AS compounding_middle, cardinality(fc_at) AS points,
       round((SELECT fc_v[13] FROM capacity_forecast_path('linear', 100, 200, '2032-06-01', '2032-06-11', NULL, NULL, '2032-06-11'))::numeric, 2) AS linear_middle,
       cardinality(band_at) AS band_points, round(band_v[1]::numeric, 6) AS band_from, round(band_v[25]::numeric, 6) AS band_steep_end
  FROM capacity_forecast_path('multiplicative', 100, 200, '2032-06-01', '2032-06-11', '2032-06-06', '2032-06-21', '2032-06-21');
-- the hostile note is text; nothing fetched; only decisions up to as_of
SELECT h LIKE '%&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;&lt;/svg&gt; &amp; &quot;quoted&quot;%' AS note_escaped,
       position('<script' IN lower(h)) = 0 AS no_script,
       h !~* 'https?://' AS no_urls,
       h !~* '(src|href)\s*=|@import|url\(' AS no_fetches,
       position('decided after as_of' IN h) = 0 AS later_decision_left_out
  FROM doc;
SELECT capacity_html('<a href="x">Tom''s & co</a>');
-- an unknown plan is capacity_stage's error
\set VERBOSITY terse
SELECT capacity_report_html('2032-06-01 00:00+00', plan => 'no-such-plan');
\set VERBOSITY default
-- pg_monitor may read it, PUBLIC may not
SELECT has_function_privilege('pg_monitor', 'capacity_report_html(timestamptz, interval, text)', 'EXECUTE') AS monitor,
       has_function_privilege('public', 'capacity_report_html(timestamptz, interval, text)', 'EXECUTE') AS public;
-- out-of-range and not-a-number values: clear errors, or drawn clamped
\set VERBOSITY terse
SELECT capacity_svg_chart(ARRAY['2032-01-01', '2032-01-02']::timestamptz[], ARRAY['NaN', 1]::float8[]);
SELECT capacity_svg_chart(ARRAY['2032-01-01']::timestamptz[], ARRAY[1, 2]::float8[]);
SELECT capacity_svg_chart(ARRAY['2032-01-01']::timestamptz[], ARRAY[1]::float8[], x_end => 'infinity');
SELECT capacity_report_days('read_qps', '{}', '2032-01-01', 2147483647, '2032-06-01');
SELECT capacity_report_days('read_qps', '{}', '-infinity', 90, '2032-06-01');
SELECT * FROM capacity_forecast_path('linear', 1, 2, '2032-06-01', 'infinity', NULL, NULL, NULL);
SELECT capacity_forecast_value(true, 'NaN', 2, '2032-06-01', '2032-06-11', '2032-06-05');
\set VERBOSITY default
SELECT capacity_svg_chart(ARRAY['2032-01-01', '2032-01-02']::timestamptz[], ARRAY[1e308, -1e308]::float8[], 1e308) ~ 'data-points="2"' AS extremes_drawn,
       (SELECT fc_v[13] BETWEEN -1e308 AND 1e308 FROM capacity_forecast_path('linear', -1e308, 1e308, '2032-06-01', '2294-06-01', NULL, NULL, NULL)) AS extreme_forecast_drawn;
-- a non-ladder plan: its conditions charted with their own forecasts
-- (recall p95 compounding 2 %/day towards tiers-abc's 800 ms)
SELECT capacity_plan_install('tiers-abc');
INSERT INTO capacity_sample_hourly (indicator, labels, hour, min, max, avg, last, count)
SELECT 'recall_p95_ms', '{}', h, v, v, v, v, 60
  FROM (SELECT h, 500 * power(1.02, extract(epoch FROM h - timestamptz '2032-05-02') / 86400) AS v
          FROM generate_series(timestamptz '2032-05-02', '2032-05-31 23:00', interval '1 hour') h) s;
SELECT capacity_roll_up_days('2032-05-01', '2032-06-01') > 0 AS rolled;
CREATE TEMP TABLE doc2 AS SELECT capacity_report_html('2032-06-01 00:00+00', plan => 'tiers-abc') AS h;
SELECT (SELECT decision FROM capacity_stage('2032-06-01 00:00+00', plan => 'tiers-abc')) AS decision,
       h ~ '<h3>B.recall_p95</h3><p>[^<]*multiplicative trend</p><svg[^>]*>.*?<polyline class="fc" data-points="25"' AS plan_condition_forecast_curve,
       (regexp_match(h, '<h3>B.recall_p95</h3>.*?eta (\d{4}-\d\d-\d\d)'))[1] AS eta_on_chart,
       (SELECT eta::date FROM capacity_plan_forecast_eval('2032-06-01 00:00+00', '6 months', capacity_bindings(), '{}', NULL, 'tiers-abc')
         WHERE trigger_name = 'B.recall_p95') AS forecast_eta
  FROM doc2;
-- the curve bends: its middle point lies below the chord (larger SVG y)
SELECT (pts[13][2] > (pts[1][2] + pts[25][2]) / 2) AS compounding_is_a_curve
  FROM (SELECT ARRAY(SELECT ARRAY[split_part(p, ',', 1)::numeric, split_part(p, ',', 2)::numeric]
                       FROM unnest(string_to_array((regexp_match(h, '<h3>B.recall_p95</h3>.*?<polyline class="fc" data-points="25" points="([^"]*)"'))[1], ' '))
                            WITH ORDINALITY u(p, o) ORDER BY o) AS pts FROM doc2) x;
-- a hostile pool name is text
INSERT INTO capacity_sample_daily (indicator, labels, day, min, max, avg, last, count)
VALUES ('pool_utilization', '{"pool": "<script>alert(1)</script>"}', '2032-05-20', 50, 50, 50, 50, 1);
SELECT position('Pool pool=&lt;script&gt;alert(1)&lt;/script&gt;' IN capacity_report_html('2032-06-01 00:00+00')) > 0 AS pool_name_escaped,
       position('<script' IN capacity_report_html('2032-06-01 00:00+00')) = 0 AS no_script;
DELETE FROM capacity_sample_daily WHERE labels = '{"pool": "<script>alert(1)</script>"}';
-- the fleet: no section without members; with one registered (inserted
-- here: capacity_fleet_add connects to it), its recorded figures as of
-- as_of (labels {member}) in the table and its chart, labels escaped
SELECT position('<h2>Fleet</h2>' IN h) = 0 AS no_fleet_section FROM doc;
INSERT INTO capacity_fleet_member (name, kind, server, labels)
VALUES ('replica-1', 'replica', 'replica_1_srv', '{"zone": "<i>eu</i>"}');
INSERT INTO capacity_sample_hourly (indicator, labels, hour, min, max, avg, last, count)
SELECT i, '{"member": "replica-1"}', h, v, v, v, v, 12
  FROM generate_series(timestamptz '2032-05-22', '2032-05-31 23:00', interval '1 hour') h,
       (VALUES ('read_qps', 300.0), ('write_qps', 40.0), ('fleet_rtt_ms', 1.5), ('fleet_member_up', 1.0), ('replica_lag_seconds', 0.2)) v(i, v);
SELECT capacity_roll_up_days('2032-05-22', '2032-06-01') > 0 AS rolled;
CREATE TEMP TABLE doc3 AS SELECT capacity_report_html('2032-06-01 00:00+00') AS h;
SELECT h ~ '<h2>Fleet</h2><table id="fleet">.*<tr><td>replica-1</td><td>replica</td><td>\{&quot;zone&quot;: &quot;&lt;i&gt;eu&lt;/i&gt;&quot;\}</td><td>yes</td><td>2032-05-31 23:00</td><td class="n">1.5</td><td class="n">300</td><td class="n">40</td>' AS member_row,
       (regexp_match(h, '<h3>Member replica-1</h3>.*?<path class="series s1" data-points="(\d+)"'))[1] AS read_qps_points,
       (regexp_match(h, '<h3>Member replica-1</h3>.*?data-series="rtt" data-points="(\d+)"'))[1] AS rtt_points,
       -- the hub's own QPS chart does not mix in the member's series
       (regexp_match(h, 'id="qps">.*?<path class="series s1" data-points="(\d+)"'))[1] AS hub_read_qps_points
  FROM doc3;
DELETE FROM capacity_sample_hourly WHERE labels = '{"member": "replica-1"}';
DELETE FROM capacity_sample_daily WHERE labels = '{"member": "replica-1"}';
DELETE FROM capacity_fleet_member;
-- the hot tables are found as the caller finds them: demo."Event" is on
-- this search path and not bound, and the page says what
-- capacity_trigger_eval says with the caller's bindings
SET search_path = demo, rh, public;
SELECT (SELECT status || ' ' || labels::text FROM capacity_trigger_eval('2032-06-01 00:00+00', capacity_bindings()) WHERE trigger_name = 'event_rows') AS caller_sees,
       (SELECT m[2] || ' ' || m[1] FROM regexp_match(capacity_report_html('2032-06-01 00:00+00'),
               '<td>event_rows(?:<br><span class="sub">([^<]*)</span>)?</td><td class="st-[a-z]+">([^<]*)<') m) AS page_says;
SET search_path = rh, public;
-- an empty window (no samples before 2001) says what to do
SELECT position('id="empty"' IN capacity_report_html('2000-06-01 00:00+00')) > 0 AS empty_page_says_what_to_do;
RESET search_path;
