#!/usr/bin/env bash
# The HTML review in a real browser: Debian's chromium, headless, renders
# capacity_report_html() from a database with 30 days of history (trigger
# series, latency percentiles, read/write QPS, two pools, a managed table's
# rows), a managed table with a hostile name and a hostile decision note;
# and the page of an empty database.  The rendered DOM holds the SVG charts;
# the note's <script> did not run (it would change document.title; a control
# page shows that scripts do run in this browser); the screenshot has the
# window's size and is not blank.  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55472
W=$(mktemp -d); chmod 755 "$W"
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir report_html)" -p $PORT -U postgres -d postgres "$@"; }
trap 'cluster_stop report_html; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
    echo "not ok - chromium is installed (apt-get install chromium; it is in MC_APT_PACKAGES)"
    exit 1
fi
browse() {   # browse OUTFLAG FILE: headless chromium, bounded
    timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --user-data-dir="$W/profile" "$@" 2>>"$W/chromium.log"
}

cluster_start report_html $PORT
q -c "CREATE EXTENSION matter_capacity" >/dev/null
q >/dev/null <<'SQL'
SET TimeZone = 'UTC';
CREATE TABLE "Event" (id bigint, "createdAt" timestamptz NOT NULL) PARTITION BY RANGE ("createdAt");
SELECT capacity_manage('"Event"', 'createdAt', 'week', premake => 4);
SELECT capacity_rollover('"Event"');
SELECT capacity_bind_table('Event', '"Event"');
CREATE TEMP TABLE at AS SELECT date_trunc('day', now()) AS as_of;
INSERT INTO capacity_sample_hourly (indicator, labels, hour, min, max, avg, last, count)
SELECT i, '{}', h, v, v, v, v, 60
  FROM at, LATERAL (SELECT h, extract(epoch FROM at.as_of - h) / 86400 AS d
                      FROM generate_series(at.as_of - interval '30 days', at.as_of - interval '1 hour', interval '1 hour') h) s,
       LATERAL (VALUES ('read_qps', 480 - 1.5 * d),
                       ('cpu_utilization', CASE WHEN d BETWEEN 10 AND 13 THEN NULL ELSE 65 END),
                       ('pool_utilization', 40 + 10 * sin(d))) v(i, v)
 WHERE v IS NOT NULL;
SELECT capacity_roll_up_days(as_of - interval '31 days', as_of) FROM at;
INSERT INTO capacity_sample (indicator, labels, sampled_at, value)
SELECT i, '{}', t, v FROM at, generate_series(at.as_of - interval '70 minutes', at.as_of, interval '5 minutes') t,
       (VALUES ('read_qps', 480.0), ('cpu_utilization', 65.0), ('pool_utilization', 40.0)) v(i, v);
INSERT INTO capacity_latest_sample (indicator, labels, sampled_at, value)
SELECT i, '{}', as_of, v FROM at, (VALUES ('read_qps', 480.0), ('cpu_utilization', 65.0), ('pool_utilization', 40.0)) v(i, v)
ON CONFLICT (indicator, labels) DO UPDATE SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value;
SELECT capacity_decide('stay', '<script>document.title="pwned"</script></svg> replicas next quarter', as_of - interval '2 days') FROM at;
-- workload: latency p50/p95/p99 on 20 days, write QPS on 25, two pools on 30
INSERT INTO capacity_sample_hourly (indicator, labels, hour, min, max, avg, last, count)
SELECT i, l::jsonb, h, v, v, v, v, 60
  FROM at, LATERAL (SELECT h FROM generate_series(at.as_of - interval '30 days', at.as_of - interval '1 hour', interval '1 hour') h) s,
       LATERAL (VALUES ('read_latency_p50_ms', '{}', 2.0, 20), ('read_latency_p95_ms', '{}', 9.0, 20),
                       ('read_latency_p99_ms', '{}', 25.0, 20), ('write_qps', '{}', 120.0, 25),
                       ('pool_utilization', '{"pool": "app"}', 55.0, 30),
                       ('pool_utilization', '{"pool": "<b>reports</b>"}', 70.0, 30)) v(i, l, v, ndays)
 WHERE h >= at.as_of - make_interval(days => ndays);
-- a managed table with a hostile name and its row counts
CREATE TABLE "<script>t()</script>" (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('"<script>t()</script>"', 'at', 'week', premake => 2);
INSERT INTO capacity_sample_hourly (indicator, labels, hour, min, max, avg, last, count)
SELECT 'table_rows', jsonb_build_object('table', 'public."<script>t()</script>"'), h, n, n, n, n, 1
  FROM at, LATERAL (SELECT h, 1000 * extract(epoch FROM h - (at.as_of - interval '15 days')) / 3600 AS n
                      FROM generate_series(at.as_of - interval '15 days', at.as_of - interval '1 hour', interval '1 hour') h) s;
SELECT capacity_roll_up_days(as_of - interval '31 days', as_of) FROM at;
SQL
q -c "SELECT capacity_report_html(date_trunc('day', now()))" >"$W/report.html"
ok $? "capacity_report_html() returns a document"
charts=$(grep -o '<svg class="chart"' "$W/report.html" | wc -l)

browse --dump-dom "file://$W/report.html" >"$W/dom.html"
ok $? "chromium renders the report (--dump-dom)"
dom_charts=$(grep -o '<svg class="chart"' "$W/dom.html" | wc -l)
[ "$charts" -ge 3 ] && [ "$dom_charts" = "$charts" ]
ok $? "the rendered DOM holds the $charts SVG charts"
[ "$(grep -o '<path class="series s1"' "$W/dom.html" | wc -l)" = "$charts" ]
ok $? "each chart draws its series"
grep -o '<title>[^<]*</title>' "$W/dom.html" | head -1 | grep -q '^<title>Capacity review [0-9-]* [0-9:]* UTC</title>$'
ok $? "the hostile note's script did not run (title unchanged)"
grep -q '&lt;script&gt;document.title="pwned"&lt;/script&gt;&lt;/svg&gt; replicas next quarter' "$W/dom.html"
ok $? "the hostile note is shown as text"
grep -q '&lt;script&gt;t()&lt;/script&gt;' "$W/dom.html" && grep -q 'Pool pool=&lt;b&gt;reports&lt;/b&gt;' "$W/dom.html"
ok $? "a hostile table name and pool label are shown as text"
! grep -Eiq '<script|(src|href) *= *"?https?:' "$W/dom.html"
ok $? "no script element and nothing fetched from the network"

# control: in this browser a page's script does run
printf '<!DOCTYPE html><html><head><title>before</title></head><body><script>document.title="ran"</script></body></html>' >"$W/control.html"
browse --dump-dom "file://$W/control.html" | grep -q '<title>ran</title>'
ok $? "control: chromium runs an inline script (so the check above means something)"

browse --screenshot="$W/report.png" --window-size=1200,2000 "file://$W/report.html" >/dev/null
size=$(python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(24); print(*struct.unpack('>II', d[16:24]))" "$W/report.png" 2>/dev/null)
[ "$size" = "1200 2000" ]
ok $? "the screenshot is 1200x2000 ($size)"
[ "$(stat -c %s "$W/report.png" 2>/dev/null || echo 0)" -gt 30000 ]
ok $? "the screenshot is not blank ($(stat -c %s "$W/report.png" 2>/dev/null) bytes)"
if [ -n "${REPORT_PNG:-}" ]; then cp "$W/report.png" "$REPORT_PNG"; cp "$W/report.html" "${REPORT_PNG%.png}.html"; fi

# an HTML parser (Python's html.parser) reads the document: tags balance,
# each chart's path has as many points as its data-points says
python3 - "$W/report.html" <<'PY'
import re, sys
from html.parser import HTMLParser
VOID = {"meta", "br", "rect", "line", "polygon", "polyline", "path", "circle"}
class P(HTMLParser):
    def __init__(self):
        super().__init__(); self.stack = []; self.bad = []; self.svgs = 0; self.paths = []; self.series = {}
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg": self.svgs += 1
        if tag == "path":
            self.paths.append((int(a["data-points"]), len(re.findall(r"[ML]", a["d"]))))
            self.series.setdefault(self.title, []).append((a.get("data-series", "s1"), int(a["data-points"])))
        if tag not in VOID: self.stack.append(tag)
    def handle_startendtag(self, tag, attrs): self.handle_starttag(tag, attrs) if tag in VOID else None
    def handle_endtag(self, tag):
        if tag in VOID: return
        if not self.stack or self.stack[-1] != tag: self.bad.append(tag)
        else: self.stack.pop()
    def handle_data(self, data):
        if self.stack and self.stack[-1] == "h3": self.title = data
p = P(); p.title = None
p.feed(open(sys.argv[1]).read()); p.close()
print(("ok" if not p.bad and not p.stack else "not ok")
      + " - html.parser: every element closed in order (%d svg)" % p.svgs)
print(("ok" if p.paths and all(n == m for n, m in p.paths) else "not ok")
      + " - html.parser: each chart's path has its data-points (%s)" % ", ".join("%d" % n for n, _ in p.paths))
# point counts per chart: the days each series has samples in the 90 days
want = {"read_qps_sustained": [("s1", 30)],
        "Read latency (ms)": [("s1", 20), ("p95", 20), ("p99", 20)],
        "Queries per second": [("s1", 30), ("write", 25)],
        "Pool pool=app": [("s1", 30)],
        "Pool pool=<b>reports</b>": [("s1", 30)]}
got = {k: p.series.get(k) for k in want}
print(("ok" if got == want else "not ok") + " - html.parser: points per chart and series %s" % got)
tbl = [k for k in p.series if k and k.endswith(": rows")]
print(("ok" if len(tbl) == 1 and p.series[tbl[0]] == [("s1", 15)] else "not ok")
      + " - html.parser: the managed table's rows chart (%s)" % {k: p.series[k] for k in tbl})
PY

# an empty database: a page that says what to do, rendered
q -c "CREATE DATABASE empty_db" >/dev/null
psql -X -q -At -h "$(cluster_dir report_html)" -p $PORT -U postgres -d empty_db -c "CREATE EXTENSION matter_capacity" >/dev/null
psql -X -q -At -h "$(cluster_dir report_html)" -p $PORT -U postgres -d empty_db \
     -c "SELECT capacity_report_html('2030-01-01 00:00+00')" >"$W/empty.html"
browse --dump-dom "file://$W/empty.html" >"$W/empty_dom.html"
grep -q 'id="empty"><b>No samples yet.</b>' "$W/empty_dom.html" && grep -q 'capacity_sample_now()' "$W/empty_dom.html" \
  && grep -q 'No managed tables' "$W/empty_dom.html"
ok $? "an empty database renders a page that says what to do"
