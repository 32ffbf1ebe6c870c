#!/usr/bin/env bash
# No test may depend on the day it runs.  The pg_regress suite (sql/ and
# expected/, deterministic through as_of) is run again with the server and
# its clients living at other dates, under libfaketime (Debian's faketime):
#
#   monday     Sunday 2026-12-06 23:59:55 UTC, ticking into Monday 00:00 UTC
#              (a new ISO week starts during the run)
#   newyear    2026-12-31 23:59:55 UTC: the calendar year turns while the
#              ISO week is still 2026-W53 (ISO year 2026 has 53 weeks)
#   isoyear    2027-01-03 23:59:55 UTC: ISO year 2027 starts, Monday
#              2027-01-04 (week 2027-W01)
#   dst        2027-03-28 00:59:55 UTC, seen from Europe/Berlin sessions and
#              a server whose TimeZone is Europe/Berlin: clocks go from
#              02:00 CET to 03:00 CEST at 01:00 UTC
#
# The fake clock is a relative offset computed from the real clock now
# (FAKETIME="+N" seconds, ticking; an absolute date stops the clock and
# makes pg_ctl -w hang).  The server gets it through the environment of
# pg_ctl (LD_PRELOAD reaches the postmaster and every backend it forks);
# pg_regress and its psql through faketime(1).  pg_regress reads sql/ and
# expected/ from the work tree and writes results to a temporary directory,
# so the comparison is the same one `make installcheck` makes.
#
# The pgTAP tests run there too.  Besides the suites, each date checks the paths that read the clock
# itself (as_of DEFAULT now()): rollover, sampling, stage and forecast
# under the session's own TimeZone.  MC_CLOCK_DATES picks dates (names
# above, space separated).  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55458
W=$(mktemp -d); chmod 755 "$W"
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
trap 'cluster_stop clock; rm -rf "$W"' EXIT

LIBFAKETIME=$(dpkg -L libfaketime 2>/dev/null | grep '/libfaketime\.so\.1$' | head -n 1)
: "${LIBFAKETIME:=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1}"
if ! command -v faketime >/dev/null || [ ! -f "$LIBFAKETIME" ]; then
    echo "not ok - faketime and libfaketime are installed (apt-get install faketime)"
    exit 1
fi
PGXS_DIR=$(dirname "$(dirname "$("$PGBIN/pg_config" --pgxs)")")
PG_REGRESS=$PGXS_DIR/test/regress/pg_regress
TESTS=$(cd "$MC_ROOT/sql" && ls *.sql | sed 's/\.sql$//')

declare -A TARGET=(
    [monday]='2026-12-07 00:00:00+00'
    [newyear]='2027-01-01 00:00:00+00'
    [isoyear]='2027-01-04 00:00:00+00'
    [dst]='2027-03-28 01:00:00+00'
)
LEAD=5      # start this many seconds before the target so the run crosses it
DATES=${MC_CLOCK_DATES:-monday newyear isoyear dst}

run_date() {
    local name=$1 zone=UTC
    [ "$name" = dst ] && zone=Europe/Berlin
    local target; target=$(date -u -d "${TARGET[$name]}" +%s)
    cluster_start clock $PORT "timezone = '$zone'" "log_timezone = '$zone'"
    cluster_stop clock
    # the offset is computed just before the server starts; the clients
    # use the same one, so server and clients agree on the time
    local off=$(( target - LEAD - $(date -u +%s) ))
    local ft; if [ "$off" -ge 0 ]; then ft="+$off"; else ft="$off"; fi
    local dir; dir=$(cluster_dir clock)
    as_server_user env FAKETIME="$ft" FAKETIME_DONT_FAKE_MONOTONIC=1 LD_PRELOAD="$LIBFAKETIME" TZ="$zone" \
        "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
    local q="psql -X -q -At -v ON_ERROR_STOP=1 -h $dir -p $PORT -U postgres"

    # the server's own clock is the fake one (asked by a client that is not faked)
    local pm now
    pm=$($q -d postgres -c "SELECT to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')")
    now=$($q -d postgres -c "SELECT abs(extract(epoch FROM now() - timestamptz '${TARGET[$name]}')) < 120")
    echo "# $name: FAKETIME=$ft, postmaster started at $pm UTC (TimeZone $zone)"
    [ "$now" = t ]; ok $? "$name: the server runs at ${TARGET[$name]} (libfaketime reached the backends)"

    # the whole deterministic suite, compared with expected/
    local out="$W/$name"; mkdir -p "$out"; chmod 755 "$out"
    (cd "$MC_ROOT" && PGHOST=$dir PGPORT=$PORT PGUSER=postgres \
        faketime --exclude-monotonic -f "$ft" \
        "$PG_REGRESS" --inputdir="$MC_ROOT" --outputdir="$out" --bindir="$PGBIN" \
            --launcher="env PGTZ=$zone" --dbname=contrib_regression $TESTS) >"$out/regress.log" 2>&1
    local rc=$?
    grep -E '^(test |     |ok |not ok ).*(ok|FAILED|failed)' "$out/regress.log" | grep -E 'FAILED|failed' | sed "s/^/# $name: /"
    local passed; passed=$(grep -cE '^(test |     |ok ).* ok( |$)' "$out/regress.log")
    if [ "$rc" != 0 ] || [ "$passed" != "$(echo $TESTS | wc -w)" ]; then
        tail -n 5 "$out/regress.log" | sed "s/^/# $name: /"
        [ -f "$out/regression.diffs" ] && head -n 120 "$out/regression.diffs" | sed "s/^/# $name: /"
        rc=1
    fi
    local ended; ended=$($q -d postgres -c "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')")
    ok $rc "$name: pg_regress suite matches expected/ ($passed of $(echo $TESTS | wc -w) tests, ran until $ended UTC)"

    # the pgTAP tests too (they assert the contract, through as_of)
    $q -d postgres -c "DROP DATABASE IF EXISTS clock_tap" -c "CREATE DATABASE clock_tap" >/dev/null 2>&1
    $q -d clock_tap -c "SET client_min_messages = warning" -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION matter_capacity" >/dev/null
    (cd "$MC_ROOT" && PGHOST=$dir PGPORT=$PORT PGUSER=postgres PGTZ=$zone faketime --exclude-monotonic -f "$ft" \
        pg_prove -v -S fake_clock=1 -d clock_tap test/pgtap/*.sql) >"$out/pgtap.log" 2>&1
    local tp tf
    tp=$(grep -cE '^ *ok [0-9]' "$out/pgtap.log"); tf=$(grep -cE '^ *not ok [0-9]|Dubious|Bad plan|Parse errors' "$out/pgtap.log")
    [ "$tf" = 0 ] || grep -E 'not ok|Dubious|Bad plan|Parse errors|#' "$out/pgtap.log" | head -n 30 | sed "s/^/# $name: /"
    [ "$tf" = 0 ] && [ "$tp" -gt 0 ]
    ok $? "$name: pgTAP tests pass ($tp ok, $tf failed)"

    # the clock-reading paths, in a session of the date's TimeZone
    $q -d postgres -c "DROP DATABASE IF EXISTS clock" -c "CREATE DATABASE clock" >/dev/null 2>&1
    local res
    res=$(PGTZ=$zone faketime --exclude-monotonic -f "$ft" \
          psql -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p $PORT -U postgres -d clock 2>&1 <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE ev (org int NOT NULL, t timestamptz NOT NULL DEFAULT now()) PARTITION BY RANGE (t);
CREATE TABLE dy (t timestamptz NOT NULL DEFAULT now()) PARTITION BY RANGE (t);
CREATE TABLE mo (d date NOT NULL DEFAULT current_date) PARTITION BY RANGE (d);
SELECT capacity_manage('ev', 't', 'week', 'org', 2, premake => 2);
SELECT capacity_manage('dy', 't', 'day', premake => 2);
SELECT capacity_manage('mo', 'd', 'month', premake => 1);
SELECT 'rolled_over:' || (count(*) > 0) FROM capacity_rollover();
INSERT INTO ev (org) SELECT g FROM generate_series(1, 10) g;
INSERT INTO dy DEFAULT VALUES;
INSERT INTO mo DEFAULT VALUES;
-- the current period holds now() and starts at a Monday / midnight / the 1st, in UTC
SELECT 'week:' || bool_and(extract(isodow FROM range_from AT TIME ZONE 'UTC') = 1
                     AND (range_from AT TIME ZONE 'UTC')::time = '00:00'
                     AND range_to - range_from = interval '7 days')
  FROM capacity_partitions WHERE table_name = 'ev'::regclass AND level = 1 AND NOT is_default
   AND range_from <= now() AND now() < range_to;
SELECT 'default_empty:' || ((SELECT count(*) FROM ev_default) + (SELECT count(*) FROM dy_default)
       + (SELECT count(*) FROM mo_default) = 0);
SELECT 'sampled:' || (capacity_sample_now() > 0);
SELECT 'runway_positive:' || (count(*) = 3 AND bool_and(value > 0)) FROM capacity_latest
 WHERE indicator = 'partition_runway_days' AND labels->>'table' IN ('public.ev', 'public.dy', 'public.mo');
SELECT 'stage:' || (count(*) = 1) FROM capacity_stage();
SELECT 'forecast:' || (count(*) >= 0) FROM capacity_forecast();
SELECT 'again_idempotent:' || (count(*) = 0) FROM capacity_rollover();
SQL
)
    echo "$res" | grep -vE ':true$|^$' | sed "s/^/# $name: /"
    ! echo "$res" | grep -qE ':(false|)$|ERROR' && [ "$(echo "$res" | grep -c ':true$')" = 8 ]
    ok $? "$name: rollover, sampling, stage and forecast with as_of = now() in a $zone session"
    cluster_stop clock
}

for d in $DATES; do
    [ -n "${TARGET[$d]:-}" ] || { echo "not ok - unknown date $d"; continue; }
    run_date "$d"
done
