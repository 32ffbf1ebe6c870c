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
-- one chart per metric trigger with samples (3), the others listed; one
-- runway bar per managed table; a series holds its days with samples (29
-- for read_qps: as_of's own day has none yet; 26 for cpu: the four days
-- missing are a gap, a new subpath); the threshold line, the forecast
-- band and the eta where capacity_forecast puts it
SELECT (SELECT count(*) FROM regexp_matches(h, '<svg class="chart"', 'g')) AS charts,
       h ~ '<p class="sub" id="nodata">No samples in the last 30 days \(not charted\): [^<]*read_p99_over_baseline' AS empty_ones_listed,
       (SELECT count(*) FROM regexp_matches(h, '<svg', 'g'))
         - (SELECT count(*) FROM regexp_matches(h, '<svg class="chart"', 'g'))
         = (SELECT count(*) FROM capacity_policy) AS runway_bars,
       (SELECT count(*) FROM regexp_matches(h, '</svg>', 'g')) = (SELECT count(*) FROM regexp_matches(h, '<svg', 'g')) AS closed
  FROM doc;
SELECT (regexp_match(h, '<h3>read_qps_sustained</h3>.*?<path class="series" data-points="(\d+)"'))[1] AS read_qps_points,
       (regexp_match(h, '<h3>primary_cpu_sustained</h3>.*?<path class="series" data-points="(\d+)" d="([^"]*)"'))[1] AS cpu_points,
       (SELECT count(*) FROM regexp_matches((regexp_match(h, '<h3>primary_cpu_sustained</h3>.*?<path class="series" data-points="\d+" d="([^"]*)"'))[1], 'M', 'g')) AS cpu_subpaths,
       h ~ '<h3>read_qps_sustained</h3>.*?<line class="thr"' AS read_qps_threshold_line,
       (regexp_match(h, '<h3>read_qps_sustained</h3>.*?eta (\d{4}-\d\d-\d\d)'))[1] AS read_qps_eta_on_chart,
       (SELECT eta::date FROM capacity_forecast('2032-06-01 00:00+00') WHERE trigger_name = 'read_qps_sustained') AS forecast_eta,
       h ~ '<h3>read_qps_sustained</h3>.*?<polygon class="band"' AS band_drawn
  FROM doc;
-- coordinates where the data says: plot x 62..548, y 146 (lo = 0) up to
-- 10 (hi = 8 % over the largest of series and threshold: 80 * 1.08)
SELECT (regexp_match(h, '<h3>pool_utilization</h3>.*?<line class="thr" x1="62" x2="548" y1="([0-9.]+)"'))[1] AS pool_threshold_y,
       round(146 - 80 / 86.4 * 136, 1) AS expected_threshold_y,
       (regexp_match(h, '<h3>pool_utilization</h3>.*?<path class="series" data-points="\d+" d="M([0-9.]+) ([0-9.]+) '))[2] AS pool_series_y,
       round(146 - 40 / 86.4 * 136, 1) AS expected_series_y,
       (regexp_match(h, '<h3>pool_utilization</h3>.*?<path class="series" data-points="\d+" d="M([0-9.]+) '))[1] AS first_day_x
  FROM doc;
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
-- an empty window (no samples before 2001) says what to do
SELECT position('id="empty"' IN capacity_report_html('2000-06-01 00:00+00')) > 0 AS empty_page_says_what_to_do;
RESET search_path;
