#!/usr/bin/env bash
# scripts/report.sh [database] [as_of] > report.html — the capacity review
# as one self-contained HTML document (capacity_report_html(), docs/report.md).
# Connects as psql does (PGHOST, PGPORT, PGUSER ...); needs pg_monitor.
set -euo pipefail
db=${1:-${PGDATABASE:-postgres}}
if [ -n "${2:-}" ]; then
    exec psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -v as_of="$2" \
        <<<"SELECT capacity_report_html(:'as_of'::timestamptz)"
fi
exec psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -c "SELECT capacity_report_html()"
