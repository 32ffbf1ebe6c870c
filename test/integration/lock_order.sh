#!/usr/bin/env bash
# The one-transaction rollover must not pause while it holds what readers
# need.  A call that both attaches new periods and retires old ones used to
# attach first (ACCESS EXCLUSIVE on the default partition until commit) and
# then DETACH (ACCESS EXCLUSIVE on the parent): readers hold the parent and
# then queue for the default partition, so every DETACH attempt timed out
# behind them, and the pauses between attempts kept the default partition
# locked: load.sh saw four readers wait 4.8 s with lock_timeout 100 ms.
# Here a long reader holds the parent (as a report whose plan pruned to a
# period does: the parent and that period, not the default partition), so
# the two DETACHes cannot get their lock, while a second reader runs
# statements throughout.  Asserted: the rollover still attaches, says
# skipped_locked for the two, and no statement of the second reader waits
# longer than the lock timeout plus a margin.  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
: "${PGHOST:?run through scripts/test.sh}"
DB=mc_lock_order
MARGIN_MS=400
W=$(mktemp -d); chmod 777 "$W"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" 2>/dev/null
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" (id bigint GENERATED ALWAYS AS IDENTITY, "orgId" text NOT NULL,
                      "createdAt" timestamptz NOT NULL, PRIMARY KEY (id, "createdAt", "orgId"))
  PARTITION BY RANGE ("createdAt");
SELECT capacity_manage('"Event"', 'createdAt', 'week', 'orgId', 4, premake => 2,
                       retention => '2 weeks', retention_action => 'drop');
SELECT count(*) FROM capacity_rollover('"Event"', as_of => '2026-11-02 00:00+00');
INSERT INTO "Event" ("orgId", "createdAt") SELECT 'org' || g % 10, '2026-11-02 00:00+00'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 1000) g;
SQL
timeout_ms=$(q -c "SELECT current_setting('matter_capacity.lock_timeout', true)" 2>/dev/null | tr -dc 0-9)
[ -n "$timeout_ms" ] || timeout_ms=100

# the long reader: holds the parent for 8 s
PGAPPNAME=mc_long_reader psql -X -q -d "$DB" >/dev/null 2>&1 <<'SQL' &
BEGIN;
LOCK TABLE ONLY "Event" IN ACCESS SHARE MODE;
SELECT pg_sleep(8);
COMMIT;
SQL
for _ in $(seq 1 50); do
    [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mc_long_reader' AND wait_event = 'PgSleep'")" = 1 ] && break
    sleep 0.1
done
# the second reader: statements on "Event" throughout
cat >"$W/read.sql" <<'SQL'
SELECT count(*) FROM "Event" WHERE "orgId" = 'org3';
SQL
(cd "$W" && "$PGBIN/pgbench" -n -c 1 -T 6 -f read.sql --log --log-prefix=reader "$DB" >"$W/pgbench.out" 2>&1) &
reader=$!
sleep 0.5
t0=$(date +%s%N)
out=$(q -c "SELECT action || ' ' || partition_name FROM capacity_rollover('\"Event\"', as_of => '2026-11-30 00:00+00')" 2>&1)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "$out" | sed 's/^/# /'
wait $reader
worst=$(cat "$W"/reader.* | awk 'BEGIN{m=0} {if ($3>m) m=$3} END{printf "%d", m/1000}')
n=$(cat "$W"/reader.* | wc -l)
echo "# rollover took $ms ms; the reader ran $n statements, worst $worst ms"
[ "$(echo "$out" | grep -c '^created ')" = 3 ] && [ "$(echo "$out" | grep -c '^skipped_locked ')" = 2 ]
ok $? "the rollover attaches the three new weeks and skips the two it cannot retire"
[ "$n" -gt 10 ] && [ "$worst" -lt $((timeout_ms + MARGIN_MS)) ]
ok $? "no reader statement waited longer than lock_timeout ${timeout_ms} ms + ${MARGIN_MS} ms while the DETACHes were retried (worst $worst ms)"
wait
psql -X -q -d postgres -c "DROP DATABASE $DB"
