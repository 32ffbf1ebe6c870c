#!/usr/bin/env bash
# Conversion while autovacuum holds the table.  PostgreSQL cancels an
# autovacuum that blocks a lock request for deadlock_timeout (1 s), but the
# conversion's lock requests give up after matter_capacity.lock_timeout
# (100 ms): an autovacuum of a big table (seconds, more on a busy machine)
# made every attempt fail, so capacity_convert, or the backfill's final
# switch, ended with "lock not available" (convert.sh failed 2 runs in 3 on
# a loaded machine).  Here autovacuum is made to crawl on the table
# (cost delay 100 ms) and each step is called while it runs: the step must
# make it give way and complete.  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55459
DB=postgres
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir convav)" -p $PORT -U postgres -d $DB "$@"; }
trap 'cluster_stop convav' EXIT

cluster_start convav $PORT "autovacuum_naptime = 1"
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" (id bigint GENERATED ALWAYS AS IDENTITY, "orgId" text NOT NULL,
                      "createdAt" timestamptz NOT NULL, payload text,
                      PRIMARY KEY (id, "createdAt", "orgId"))
  WITH (autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1,
        autovacuum_vacuum_insert_threshold = 100, autovacuum_vacuum_insert_scale_factor = 0);
INSERT INTO "Event" ("orgId", "createdAt", payload)
SELECT 'org' || (g % 50), now() - (g % 40000) * interval '1 minute' - interval '1 minute', md5(g::text)
  FROM generate_series(1, 200000) g;
SQL

# wait until an autovacuum worker works on the table named $1
autovacuum_on() {
    local n=0
    for _ in $(seq 1 120); do
        n=$(q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND query LIKE '%$1%'")
        [ "$n" != 0 ] && break
        sleep 0.25
    done
    echo "# autovacuum on $1: $(q -c "SELECT string_agg(query, '; ') FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")"
    [ "$n" != 0 ]
}

autovacuum_on 'public.Event'; ok $? "an autovacuum crawls over \"Event\" before the conversion"
out=$(q -c "CALL capacity_convert('\"Event\"', 'createdAt', 'week', 'orgId', 4)" 2>&1); r=$?
echo "$out" | sed 's/^/# convert: /'
[ $r = 0 ] && [ "$(q -c "SELECT relkind FROM pg_class WHERE oid = '\"Event\"'::regclass")" = p ]
ok $? "capacity_convert completes while autovacuum holds the table"
echo "$out" | grep -q 'cancelled that autovacuum'; ok $? "it says which autovacuum gave way"

# the old table, now the historical partition, is still owed its vacuum
autovacuum_on 'public.Event_historical'; ok $? "an autovacuum crawls over the historical partition before the backfill"
out=$(q -c "CALL capacity_convert_backfill('\"Event\"', 50000)" 2>&1); r=$?
echo "$out" | sed 's/^/# backfill: /'
state=$(q -c "SELECT state FROM capacity_conversions")
[ $r = 0 ] && [ "$state" = done ]; ok $? "the backfill and its switch complete while autovacuum holds the historical partition (state $state)"
[ "$(q -c "SELECT (SELECT count(*) FROM \"Event\") = 200000 AND count(*) = 0 FROM pg_inherits WHERE inhrelid = 'public.\"Event_historical\"'::regclass")" = t ]
ok $? "all 200000 rows are in period partitions and the historical table is detached"
