#!/usr/bin/env bash
# Retention and the lock budget when things are not as the policy planned
# (review 4):
#   1. F13: a policy switched to default_partition => false while its default
#      partition still holds rows (the engine keeps it) and two periods due
#      for retention.  PostgreSQL refuses DETACH ... CONCURRENTLY while a
#      default partition exists; the procedure used to try it through the
#      loopback, fall back to a plain DETACH without committing, and send the
#      next period's DETACH CONCURRENTLY through the loopback, which waited
#      for our own ACCESS EXCLUSIVE lock for ever (the table blocked for every
#      reader).  Now such a table is retired with the bounded plain DETACH,
#      and a loopback statement that fails (connected, the statement refused)
#      is said to be the statement's failure, not loopback_conninfo's.
#   2. F18: a drop recorded in capacity_pending_drop by a run that was
#      cancelled is not carried out once the policy says retention_action
#      'detach': the record is cleared and the rollover says so.
#   3. F17: the function form over every table gives the current and coming
#      periods of every table before any table's backlog of past periods.
#   F21: rows of the default partition older than the retention cutoff are
#      reported as staying for good (every ATTACH scans them).
# Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55497
DB=postgres
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir retsafe)" -p $PORT -U postgres -d $DB "$@"; }
W=$(mktemp -d)
chmod 777 "$W"
BG=
trap '[ -n "$BG" ] && kill $BG 2>/dev/null; cluster_stop retsafe; rm -rf "$W"' EXIT

cluster_start retsafe $PORT "shared_preload_libraries = 'matter_capacity'" "matter_capacity.rollover_interval = 0"

# --- 1. F13 ------------------------------------------------------------------
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE nd (id int, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT capacity_manage('nd', 'ts', 'day', premake => 1, retention => '2 days', retention_action => 'drop');
SELECT count(*) FROM capacity_rollover('nd', as_of => '2026-11-10 00:00+00');
-- two rows stay in the default partition (outside the policy's range), one in 11-10
INSERT INTO nd VALUES (1, '2026-11-20 00:00+00'), (2, '2020-01-01 00:00+00'), (3, '2026-11-10 00:00+00');
SELECT capacity_manage('nd', 'ts', 'day', premake => 1, retention => '2 days', retention_action => 'drop',
                       default_partition => false);
SELECT count(*) FROM capacity_rollover('nd', as_of => '2026-11-10 00:00+00');
SQL
# statement_timeout only ends a hang of the old code; the CALL takes well under a second
out=$(q 2>&1 <<'SQL'
SET statement_timeout = '60s';
CALL capacity_rollover_proc('nd', as_of => '2026-11-14 00:00+00');
SQL
)
rc=$?
echo "$out" | sed 's/^/# /'
[ $rc = 0 ]
ok $? "F13: CALL capacity_rollover_proc() of a table keeping its default partition finishes (rc $rc)"
gone=$(q -c "SELECT count(*) FROM (VALUES ('nd_p20261110'), ('nd_p20261111')) v(n) WHERE to_regclass(n) IS NULL")
logged=$(q -c "SELECT count(*) FROM capacity_rollover_log WHERE action = 'dropped'
                AND partition_name IN ('nd_p20261110', 'nd_p20261111')")
[ "$gone" = 2 ] && [ "$logged" = 2 ]
ok $? "F13: both expired periods are dropped by the bounded plain DETACH ($gone gone, $logged logged)"
[ "$(q -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM ONLY nd_default")" = "1,2" ]
ok $? "F13: the rows the default partition keeps are still there"
! echo "$out" | grep -q 'loopback_conninfo'
ok $? "F13: no warning blames matter_capacity.loopback_conninfo"
[ "$(q -c "SELECT count(*) FROM capacity_pending_drop")" = 0 ]
ok $? "F13: no pending drop is left behind"
# F21: of the two kept rows, the one older than the retention cutoff is named as kept for good
echo "$out" | grep -q 'kept_in_default nd_default: 2 rows outside the policy.s range stay in the default partition; 1 of them older than the retention cutoff 2026-11-12 stay for good'
ok $? "F21: rows older than the retention cutoff are reported as kept for good, with what to do"

# a loopback that connects but whose statement fails: the hint names the statement
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE TABLE ro (id int, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT capacity_manage('ro', 'ts', 'day', premake => 1, retention => '2 days', retention_action => 'drop',
                       default_partition => false);
SELECT count(*) FROM capacity_rollover('ro', as_of => '2026-11-10 00:00+00');
INSERT INTO ro VALUES (1, '2026-11-10 01:00+00'), (2, '2026-11-11 01:00+00');
SQL
out=$(q 2>&1 <<SQL
SET statement_timeout = '60s';
SET matter_capacity.loopback_conninfo = 'host=$(cluster_dir retsafe) port=$PORT options=''-c default_transaction_read_only=on''';
CALL capacity_rollover_proc('ro', as_of => '2026-11-14 00:00+00');
SQL
)
rc=$?
echo "$out" | sed 's/^/# /'
[ $rc = 0 ] && echo "$out" | grep -q 'HINT:  The loopback connection worked; the statement itself failed' &&
    ! echo "$out" | grep -q 'loopback_conninfo'
ok $? "F13: a loopback statement that fails is reported as the statement's failure, not the setting's"
n=$(q -c "SELECT count(*) FROM capacity_rollover_log WHERE action = 'dropped'
           AND partition_name IN ('ro_p20261110', 'ro_p20261111') AND detail LIKE '%plain DETACH: DETACH CONCURRENTLY failed%'")
[ "$n" = 2 ] && [ "$(q -c "SELECT count(*) FROM ro")" = 0 ]
ok $? "F13: both periods are then retired by the plain DETACH, one committed before the next ($n logged)"

# --- 2. F18 ------------------------------------------------------------------
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE TABLE pd (id int, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT capacity_manage('pd', 'ts', 'day', premake => 1, default_partition => false);
SELECT count(*) FROM capacity_rollover('pd', as_of => '2026-11-01 00:00+00');
INSERT INTO pd VALUES (1, '2026-11-01 10:00+00'), (2, '2026-11-02 10:00+00');
SELECT capacity_manage('pd', 'ts', 'day', premake => 1, retention => '2 days', retention_action => 'drop',
                       default_partition => false);
SQL
# a long reader: the retention's DETACH CONCURRENTLY waits for it; the DBA cancels the CALL
PGAPPNAME=mc_reader psql -X -q -h "$(cluster_dir retsafe)" -p $PORT -U postgres -d $DB \
    -c "BEGIN" -c "SELECT count(*) FROM pd" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
BG=$!
for _ in $(seq 1 100); do
    [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mc_reader' AND wait_event = 'PgSleep'")" = 1 ] && break
    sleep 0.1
done
PGAPPNAME=mc_retire psql -X -q -h "$(cluster_dir retsafe)" -p $PORT -U postgres -d $DB \
    -c "CALL capacity_rollover_proc('pd', as_of => '2026-11-05 00:00+00')" >"$W/retire.out" 2>&1 &
RETIRE=$!
waiting=0
for _ in $(seq 1 300); do
    waiting=$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'matter_capacity loopback'
                     AND query LIKE '%DETACH PARTITION%' AND wait_event_type = 'Lock'")
    [ "$waiting" = 1 ] && break
    sleep 0.1
done
q -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'mc_retire'" >/dev/null
wait $RETIRE
kill $BG 2>/dev/null; wait $BG 2>/dev/null; BG=
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mc_reader'" >/dev/null
pending=$(q -c "SELECT count(*) FROM capacity_pending_drop")
echo "# the loopback waited for the reader: $waiting; drops recorded by the cancelled CALL: $pending"
[ "$waiting" = 1 ] && [ "$pending" -ge 1 ]
ok $? "F18 (setup): the cancelled CALL left its drops recorded ($pending)"
# legal hold: keep everything from now on
q >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT capacity_manage('pd', 'ts', 'day', premake => 1, retention => '2 days', retention_action => 'detach',
                       default_partition => true);
SQL
first=$(q -c "SELECT action || ' ' || partition_name FROM capacity_rollover('pd', as_of => '2026-11-05 00:00+00') ORDER BY 1")
second=$(q -c "SELECT action || ' ' || partition_name FROM capacity_rollover('pd', as_of => '2026-11-05 00:00+00') ORDER BY 1")
echo "$first" | sed 's/^/# first:  /'
echo "$second" | sed 's/^/# second: /'
kept=$(q -c "SELECT count(*) FROM pd_p20261101" 2>/dev/null)+$(q -c "SELECT count(*) FROM pd_p20261102" 2>/dev/null)
[ "$kept" = "1+1" ] && ! echo "$first$second" | grep -q '^dropped'
ok $? "F18: after the switch to retention_action 'detach' both retired periods are kept with their rows ($kept)"
[ "$(q -c "SELECT count(*) FROM capacity_pending_drop")" = 0 ] && echo "$first" | grep -q '^drop_cancelled pd_p2026110'
ok $? "F18: the recorded drops are cleared, and reported as drop_cancelled"

# --- 3. F17 ------------------------------------------------------------------
# j: stray rows in 600 past weeks of its default partition (a backlog of past
# periods, many hash leaves each); a: no default partition.  The lock budget
# of one call (max_locks_per_transaction 64 x ~100 backends / 2) holds a few
# dozen of j's periods, not all.
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE TABLE j (id bigint, org text NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT capacity_manage('j', 'ts', 'day', 'org', 8, premake => 1);
SELECT count(*) FROM capacity_rollover('j', as_of => '2026-11-09 00:00+00');
INSERT INTO j SELECT i, 'o', '1990-01-01 00:00+00'::timestamptz + (i * 7 || ' days')::interval FROM generate_series(1, 600) i;
CREATE TABLE a (id bigint, org text NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT capacity_manage('a', 'ts', 'day', 'org', 8, premake => 2, default_partition => false);
SELECT count(*) FROM capacity_rollover('a', as_of => '2026-11-09 00:00+00');
SQL
q -c "SELECT table_name || ' ' || action || ' ' || partition_name || ' ' || detail FROM capacity_rollover(as_of => '2026-11-12 00:00+00')
      WHERE table_name = 'a'::regclass OR action = 'deferred' ORDER BY 1" >"$W/f17.out" 2>&1
sed 's/^/# /' "$W/f17.out" | cut -c1-220
made=$(q -c "SELECT count(*) FROM (VALUES ('a_p20261112'), ('a_p20261113'), ('a_p20261114')) v(n) WHERE to_regclass(n) IS NOT NULL")
[ "$made" = 3 ]
ok $? "F17: the table after the backlog gets its current and coming periods ($made of 3)"
q -c "INSERT INTO a VALUES (1, 'o', '2026-11-12 08:00+00')" >/dev/null 2>&1
ok $? "F17: today's row goes into a"
grep -q '^j deferred .*goes first to the current and coming periods of every table' "$W/f17.out" &&
    [ "$(q -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'j'::regclass")" -gt 10 ]
ok $? "F17: j's backlog is partly done and the rest deferred, saying why"
[ "$(q -c "SELECT count(*) FROM j")" = 600 ]
ok $? "F17: no row of j lost"
