#!/usr/bin/env bash
# Item 8 of the partition lifecycle: the rollover never stalls the
# application.  Real concurrent sessions against the running test cluster:
#   H  holds a 10 s transaction that has read the table,
#   R  rolls over (a new period is needed),
#   A  the application (pgbench: INSERT and SELECT on the table).
# With a default partition the rollover either attaches or gives up with
# skipped_locked; A never waits much longer than the lock timeout.  With
# default_partition => false the attach needs only SHARE UPDATE EXCLUSIVE
# and succeeds while H still holds its lock.  Two rollovers at once: one
# works, the other says skipped_busy.  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
: "${PGHOST:?run through scripts/test.sh}"
DB=mc_locks
PGBENCH="$PGBIN/pgbench"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
MARGIN_MS=400
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q <<'SQL'
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" ("orgId" text NOT NULL, "createdAt" timestamptz NOT NULL DEFAULT now(), body text)
  PARTITION BY RANGE ("createdAt");
CREATE TABLE "EventND" (LIKE "Event" INCLUDING DEFAULTS) PARTITION BY RANGE ("createdAt");
SELECT capacity_manage('"Event"', 'createdAt', 'week', 'orgId', 4, premake => 1);
SELECT capacity_manage('"EventND"', 'createdAt', 'week', 'orgId', 4, premake => 1, default_partition => false);
SELECT count(*) FROM capacity_rollover();
INSERT INTO "Event" ("orgId") SELECT 'org' || g FROM generate_series(1, 1000) g;
INSERT INTO "EventND" ("orgId") SELECT 'org' || g FROM generate_series(1, 1000) g;
SQL

# run_scenario TABLE [ROLLOVER SQL]: holder + rollover + pgbench; leaves results in $W
run_scenario() {
    local tbl=$1
    local rollover=${2:-"SELECT action FROM capacity_rollover('\"$tbl\"', as_of => now() + interval '3 weeks')"}
    cat >"$W/app.sql" <<SQL
\set org random(1, 50)
INSERT INTO "$tbl" ("orgId", body) VALUES ('org' || :org, 'x');
SELECT count(*) FROM "$tbl" WHERE "orgId" = 'org' || :org AND "createdAt" > now() - interval '1 hour';
SQL
    rm -f "$W"/pgbench_log.*
    q -c "BEGIN; SELECT count(*) FROM \"$tbl\"; SELECT pg_sleep(10); COMMIT;" >/dev/null &
    local holder=$!
    sleep 0.5
    (cd "$W" && "$PGBENCH" -n -c 2 -T 6 -f app.sql -d "$DB" --log --log-prefix=pgbench_log >"$W/pgbench.out" 2>&1) &
    local app=$!
    sleep 1
    local t0 t1
    t0=$(date +%s%N)
    q -c "$rollover" >"$W/rollover.out" 2>&1
    t1=$(date +%s%N)
    ROLLOVER_MS=$(( (t1 - t0) / 1000000 ))
    wait $app
    wait $holder
    # pgbench log: client tx latency_us ...; a transaction is one INSERT + one SELECT
    WORST_MS=$(cat "$W"/pgbench_log.* | awk 'BEGIN{m=0} {if ($3>m) m=$3} END{printf "%d", m/1000}')
    FAILED_TX=$(grep -E '^number of failed transactions' "$W/pgbench.out" | awk '{print $5}')
    TX=$(cat "$W"/pgbench_log.* | wc -l)
}

timeout_ms=$(q -c "SHOW matter_capacity.lock_timeout" 2>/dev/null | tr -dc 0-9)
[ -n "$timeout_ms" ] || timeout_ms=100

# --- with a default partition -------------------------------------------
run_scenario Event
echo "# with default partition: rollover said $(tr '\n' ' ' <"$W/rollover.out")in ${ROLLOVER_MS} ms; app: $TX statements, worst ${WORST_MS} ms"
grep -qE '^(created|skipped_locked)$' "$W/rollover.out"; ok $? "default partition: rollover either attached or reported skipped_locked"
! grep -q ERROR "$W/rollover.out"; ok $? "default partition: rollover raised no error"
[ "$WORST_MS" -lt $((timeout_ms + MARGIN_MS)) ]; ok $? "default partition: worst application statement ${WORST_MS} ms < lock_timeout ${timeout_ms} ms + ${MARGIN_MS} ms (holder kept its lock 10 s)"
[ "${FAILED_TX:-0}" = 0 ] && [ "$TX" -gt 10 ]; ok $? "default partition: no application statement failed ($TX ran)"
# the skipped periods are made by the next rollover once the holder is gone
q -c "SELECT action FROM capacity_rollover('\"Event\"', as_of => now() + interval '3 weeks')" >"$W/retry.out"
if grep -q skipped_locked "$W/rollover.out"; then
    grep -q '^created$' "$W/retry.out"; ok $? "default partition: the next rollover creates what was skipped"
else
    [ ! -s "$W/retry.out" ]; ok $? "default partition: the next rollover has nothing left to do"
fi

# --- without a default partition ------------------------------------------
run_scenario EventND
echo "# without default partition: rollover said $(tr '\n' ' ' <"$W/rollover.out")in ${ROLLOVER_MS} ms; app: $TX statements, worst ${WORST_MS} ms"
grep -q '^created$' "$W/rollover.out" && ! grep -q skipped "$W/rollover.out"; ok $? "no default partition: ATTACH succeeds while the long reader holds the table"
[ "$ROLLOVER_MS" -lt 5000 ]; ok $? "no default partition: the rollover did not wait for the 10 s reader (${ROLLOVER_MS} ms)"
[ "$WORST_MS" -lt $((timeout_ms + MARGIN_MS)) ]; ok $? "no default partition: worst application statement ${WORST_MS} ms"
[ "${FAILED_TX:-0}" = 0 ] && [ "$TX" -gt 10 ]; ok $? "no default partition: no application statement failed ($TX ran)"
rows=$(q -c "SELECT count(*) FROM \"EventND\" WHERE body = 'x'")
[ "$rows" = "$TX" ]; ok $? "no default partition: every application insert is stored ($rows of $TX)"

# --- retention without a default partition: DETACH ... CONCURRENTLY ------
# two old weeks exist; the procedure retires them while the reader holds
# the table; the application must not notice
q -c "SELECT count(*) FROM capacity_rollover('\"EventND\"', as_of => now() - interval '5 weeks')" >/dev/null
q -c "SELECT capacity_manage('\"EventND\"', 'createdAt', 'week', 'orgId', 4, premake => 1, retention => '2 weeks', default_partition => false)" >/dev/null
old=$(q -c "SELECT count(*) FROM capacity_partitions WHERE table_name = '\"EventND\"'::regclass AND level = 1 AND range_to <= now() - interval '2 weeks'")
run_scenario EventND "CALL capacity_rollover_proc('\"EventND\"')"
echo "# retention without default: procedure said $(grep -o 'detached [^:]*' "$W/rollover.out" | tr '\n' ' ')in ${ROLLOVER_MS} ms; app: $TX transactions, worst ${WORST_MS} ms"
n=$(grep -c 'detached .*(DETACH CONCURRENTLY)' "$W/rollover.out")
[ "$old" -ge 2 ] && [ "$n" = "$old" ]; ok $? "no default partition: retention detached $n of $old old weeks with DETACH CONCURRENTLY"
[ "$WORST_MS" -lt $((timeout_ms + MARGIN_MS)) ]; ok $? "no default partition: worst application statement during DETACH CONCURRENTLY ${WORST_MS} ms"
[ "${FAILED_TX:-0}" = 0 ] && [ "$TX" -gt 10 ]; ok $? "no default partition: no application statement failed during retention ($TX ran)"
left=$(q -c "SELECT count(*) FROM pg_inherits WHERE inhparent = '\"EventND\"'::regclass AND inhdetachpending")
[ "$left" = 0 ]; ok $? "no default partition: no detach left pending"

# --- two rollovers at once -------------------------------------------------
q -c "BEGIN; SELECT action FROM capacity_rollover('\"Event\"', as_of => now() + interval '8 weeks'); SELECT pg_sleep(2); COMMIT;" >"$W/first.out" 2>&1 &
first=$!
sleep 0.7
q -c "SELECT action FROM capacity_rollover('\"Event\"', as_of => now() + interval '8 weeks')" >"$W/second.out" 2>&1
wait $first
echo "# first: $(grep -v '^$' "$W/first.out" | sort | uniq -c | tr '\n' ' ')second: $(tr '\n' ' ' <"$W/second.out")"
grep -q '^created$' "$W/first.out"; ok $? "concurrent rollovers: the first does the work"
[ "$(cat "$W/second.out")" = skipped_busy ]; ok $? "concurrent rollovers: the second returns skipped_busy, no error"
third=$(q -c "SELECT count(*) FROM capacity_rollover('\"Event\"', as_of => now() + interval '8 weeks')")
[ "$third" = 0 ]; ok $? "concurrent rollovers: nothing left to do afterwards (no duplicate DDL)"
dups=$(q -c "SELECT count(*) FROM (SELECT range_from FROM capacity_partitions WHERE table_name = '\"Event\"'::regclass AND level = 1 AND NOT is_default GROUP BY 1 HAVING count(*) > 1) d")
[ "$dups" = 0 ]; ok $? "concurrent rollovers: no period exists twice"

psql -X -q -d postgres -c "DROP DATABASE $DB"
