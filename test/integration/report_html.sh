#!/usr/bin/env bash
# The HTML review in a real browser: Debian's chromium, headless, renders
# capacity_report_html() from a database with 30 days of history, a managed
# table and a hostile decision note.  The rendered DOM holds the SVG charts;
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
SQL
q -c "SELECT capacity_report_html(date_trunc('day', now()))" >"$W/report.html"
ok $? "capacity_report_html() returns a document"
charts=$(grep -o '<svg class="chart"' "$W/report.html" | wc -l)

browse --dump-dom "file://$W/report.html" >"$W/dom.html"
ok $? "chromium renders the report (--dump-dom)"
dom_charts=$(grep -o '<svg class="chart"' "$W/dom.html" | wc -l)
[ "$charts" -ge 3 ] && [ "$dom_charts" = "$charts" ]
ok $? "the rendered DOM holds the $charts SVG charts"
[ "$(grep -o '<path class="series"' "$W/dom.html" | wc -l)" = "$charts" ]
ok $? "each chart draws its series"
grep -q '<title>Capacity review [0-9-]* [0-9:]* UTC</title>' "$W/dom.html" && ! grep -q pwned <(grep -o '<title>[^<]*</title>' "$W/dom.html")
ok $? "the hostile note's script did not run (title unchanged)"
grep -q '&lt;script&gt;document.title="pwned"&lt;/script&gt;&lt;/svg&gt; replicas next quarter' "$W/dom.html"
ok $? "the hostile note is shown as text"
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
        super().__init__(); self.stack = []; self.bad = []; self.svgs = 0; self.paths = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg": self.svgs += 1
        if tag == "path": self.paths.append((int(a["data-points"]), len(re.findall(r"[ML]", a["d"]))))
        if tag not in VOID: self.stack.append(tag)
    def handle_startendtag(self, tag, attrs): self.handle_starttag(tag, attrs) if tag in VOID else None
    def handle_endtag(self, tag):
        if tag in VOID: return
        if not self.stack or self.stack[-1] != tag: self.bad.append(tag)
        else: self.stack.pop()
p = P(); p.feed(open(sys.argv[1]).read()); p.close()
print(("ok" if not p.bad and not p.stack else "not ok")
      + " - html.parser: every element closed in order (%d svg)" % p.svgs)
print(("ok" if p.paths and all(n == m for n, m in p.paths) else "not ok")
      + " - html.parser: each chart's path has its data-points (%s)" % ", ".join("%d" % n for n, _ in p.paths))
PY
