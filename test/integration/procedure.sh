#!/usr/bin/env bash
# CALL capacity_rollover_proc(): the same work as capacity_rollover(), but
# committed period by period, so strong locks are held for one period at a
# time.  Shown by the creating transaction of each partition (pg_class.xmin)
# being different.  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
: "${PGHOST:?run through scripts/test.sh}"
DB=mc_proc
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" 2>/dev/null
q <<'SQL'
CREATE EXTENSION matter_capacity;
CREATE TABLE "IdempotencyRecord" (key text NOT NULL, created_at timestamptz NOT NULL)
  PARTITION BY RANGE (created_at);
SELECT capacity_manage('"IdempotencyRecord"', 'created_at', 'day', premake => 5,
                       retention => '2 days', retention_action => 'drop');
SQL
out=$(q -c "CALL capacity_rollover_proc(as_of => '2026-11-22 00:00+00')" 2>&1)
echo "$out" | sed 's/^/# /'
n=$(echo "$out" | grep -c 'created')
[ "$n" = 7 ]; ok $? "procedure reports default + 6 days as NOTICEs ($n)"
xids=$(q -c "SELECT count(DISTINCT c.xmin::text) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
             WHERE i.inhparent = '\"IdempotencyRecord\"'::regclass")
[ "$xids" = 7 ]; ok $? "each partition was attached in its own transaction ($xids transactions for 7 partitions)"
q -c "INSERT INTO \"IdempotencyRecord\" VALUES ('a', '2026-11-22 01:00+00'), ('b', '2026-11-26 01:00+00')"
out=$(q -c "CALL capacity_rollover_proc(as_of => '2026-11-26 12:00+00')" 2>&1)
echo "$out" | sed 's/^/# /'
echo "$out" | grep -q 'dropped IdempotencyRecord_p20261122'; ok $? "procedure applies retention"
rows=$(q -c "SELECT string_agg(key, ',' ORDER BY key) FROM \"IdempotencyRecord\"")
[ "$rows" = b ]; ok $? "rows of retained days are kept, dropped day's rows are gone ($rows)"
again=$(q -c "CALL capacity_rollover_proc(as_of => '2026-11-26 12:00+00')" 2>&1 | grep -c NOTICE)
[ "$again" = 0 ]; ok $? "a second CALL has nothing to do"
# case 18: CALL together with another statement in one query string (a cron
# job string, PQexec) runs as one implicit transaction where a procedure
# cannot commit: it does the work in that transaction with a NOTICE instead
# of failing with "invalid transaction termination"
q -c "CREATE TABLE multi (at timestamptz NOT NULL) PARTITION BY RANGE (at)" \
  -c "SELECT capacity_manage('multi', 'at', 'day', premake => 1)" >/dev/null
out=$(psql -X -At -d "$DB" -c "CALL capacity_rollover_proc('multi', as_of => '2026-11-22 00:00+00'); SELECT 'next statement ran'" 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
[ "$rc" = 0 ] && ! echo "$out" | grep -q 'invalid transaction termination' && echo "$out" | grep -q 'next statement ran'
ok $? "CALL in a multi-statement query string does not fail (rc $rc)"
echo "$out" | grep -q 'runs in one transaction here'; ok $? "it says it runs in one transaction"
n=$(q -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'multi'::regclass")
[ "$n" = 3 ]; ok $? "its periods are made ($n partitions)"
psql -X -q -d postgres -c "DROP DATABASE $DB"
