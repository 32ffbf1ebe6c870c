#!/usr/bin/env bash
# A minute of application load while the extension does everything it does
# to a hot table at once.  On a server with the worker loaded:
#   app        pgbench, 4 clients: single-statement inserts into "Event"
#              (each also writes a ledger row in the same statement) and
#              tenant reads of the last hour;
#   roll 1-4   four sessions calling capacity_rollover() in a loop, each
#              with its own as_of ahead of now (new weeks, retention);
#   retention  one session making old weeks and retiring them again
#              (retention_action drop: DROP of a partition of "Event");
#   worker     samples every second and rolls over every 5 s.
# Asserted: no application statement fails, none waits longer than the lock
# timeout plus a margin (the worst is printed), no rollover raises an error,
# stored rows equal the ledger.  MC_LOAD_SECONDS shortens or lengthens the
# run (default 60).  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55452
SECONDS_LOAD=${MC_LOAD_SECONDS:-60}
MARGIN_MS=400
W=$(mktemp -d)
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir load)" -p $PORT -U postgres -d load "$@"; }
trap 'kill $(jobs -p) 2>/dev/null; cluster_stop load; rm -rf "$W"' EXIT

cluster_start load $PORT "shared_preload_libraries = 'matter_capacity'" \
    "matter_capacity.database = 'load'" "matter_capacity.sample_interval = 1" \
    "matter_capacity.rollover_interval = 5" "max_connections = 50" "log_lock_waits = on"
psql -X -q -h "$(cluster_dir load)" -p $PORT -U postgres -d postgres -c "CREATE DATABASE load"
q >/dev/null <<'SQL'
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" (id bigint GENERATED ALWAYS AS IDENTITY, "orgId" text NOT NULL,
                      "createdAt" timestamptz NOT NULL DEFAULT now(), body text)
  PARTITION BY RANGE ("createdAt");
CREATE INDEX ON "Event" ("orgId", "createdAt");
CREATE TABLE ledger (event_id bigint NOT NULL);
SELECT capacity_manage('"Event"', 'createdAt', 'week', 'orgId', 4, premake => 2,
                       retention => '26 weeks', retention_action => 'drop');
SELECT count(*) FROM capacity_rollover();
INSERT INTO "Event" ("orgId", body) SELECT 'org' || (g % 200), 'seed' FROM generate_series(1, 20000) g;
SQL
timeout_ms=$(q -c "SHOW matter_capacity.lock_timeout" | tr -dc 0-9)
samples0=$(q -c "SELECT count(*) FROM capacity_sample")

cat >"$W/insert.sql" <<'SQL'
\set org random(1, 200)
WITH e AS (INSERT INTO "Event" ("orgId", body) VALUES ('org' || :org, 'app') RETURNING id) INSERT INTO ledger SELECT id FROM e;
SQL
cat >"$W/read.sql" <<'SQL'
\set org random(1, 200)
SELECT count(*) FROM "Event" WHERE "orgId" = 'org' || :org AND "createdAt" > now() - interval '1 hour';
SQL

# rollover sessions: they stop when the stop file appears
roll_loop() {  # roll_loop N: as_of steps through the next 20 weeks
    local n=$1 i=0
    while [ ! -e "$W/stop" ]; do
        q -c "SELECT action FROM capacity_rollover('\"Event\"', as_of => now() + interval '1 week' * (($n * 5 + $i) % 21))" \
            >>"$W/roll$n.out" 2>>"$W/roll$n.err"
        i=$((i + 1))
    done
}
retention_loop() {  # old weeks made (premake 2 from 30-34 weeks back) and retired again
    local i=0
    while [ ! -e "$W/stop" ]; do
        q -c "SELECT action FROM capacity_rollover('\"Event\"', as_of => now() - interval '1 week' * (30 + $i % 5))" \
            -c "SELECT action FROM capacity_rollover('\"Event\"')" >>"$W/ret.out" 2>>"$W/ret.err"
        i=$((i + 1))
    done
}

(cd "$W" && PGHOST=$(cluster_dir load) PGPORT=$PORT PGUSER=postgres "$PGBIN/pgbench" -n -c 4 -j 2 -T "$SECONDS_LOAD" \
    -f insert.sql@3 -f read.sql@1 -d load --log --log-prefix=app >"$W/pgbench.out" 2>&1) &
app=$!
# who makes the application wait: every 0.2 s, each application statement
# running for over 150 ms, what it waits for (a lock, I/O, or nothing: CPU),
# with the sessions blocking it (what
# they run, what they wait for, the strong locks they hold)
blocker_loop() {
    while [ ! -e "$W/stop" ]; do
        q -c "SELECT to_char(clock_timestamp(), 'HH24:MI:SS.MS') || ' app pid ' || a.pid || ' running '
                     || round(extract(epoch FROM clock_timestamp() - a.query_start) * 1000) || ' ms, waiting for '
                     || coalesce((SELECT string_agg(w.mode || ' on ' || coalesce(w.relation::regclass::text, w.locktype), ', ')
                                    FROM pg_locks w WHERE w.pid = a.pid AND NOT w.granted),
                              a.wait_event_type || '/' || a.wait_event, 'CPU (no wait event)')
                     || ' (' || left(a.query, 40) || '); blocked by ' || coalesce((
                SELECT string_agg(b.pid || ' [' || b.backend_type || coalesce(', ' || b.wait_event_type || '/' || b.wait_event, '')
                                  || ', xact ' || round(extract(epoch FROM clock_timestamp() - b.xact_start) * 1000) || ' ms] '
                                  || left(regexp_replace(b.query, '\s+', ' ', 'g'), 110) || ' holding '
                                  || coalesce((SELECT string_agg(l.relation::regclass || ' ' || l.mode, ', ')
                                                 FROM pg_locks l WHERE l.pid = b.pid AND l.granted AND l.locktype = 'relation'
                                                  AND l.mode IN ('AccessExclusiveLock', 'ExclusiveLock', 'ShareRowExclusiveLock',
                                                                 'ShareLock', 'ShareUpdateExclusiveLock')
                                                  AND l.relation IN (SELECT '\"Event\"'::regclass UNION ALL SELECT i.inhrelid
                                                                       FROM pg_inherits i WHERE i.inhparent = '\"Event\"'::regclass)),
                                              'no strong lock on Event or its periods'), ' / ')
                  FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(a.pid))), '?')
               FROM pg_stat_activity a
              WHERE a.application_name = 'pgbench' AND a.state = 'active'
                AND clock_timestamp() - a.query_start > interval '150 ms'" >>"$W/blockers.log" 2>/dev/null
        sleep 0.2
    done
}
sleep 1
for n in 1 2 3 4; do roll_loop $n & done
retention_loop &
blocker_loop &
wait $app; app_rc=$?
touch "$W/stop"
wait

tx=$(cat "$W"/app.* | wc -l)
worst_us=$(cat "$W"/app.* | awk 'BEGIN{m=0} {if ($3>m) m=$3} END{print m}')
worst_ms=$((worst_us / 1000))
failed=$(grep -E '^number of failed transactions' "$W/pgbench.out" | awk '{print $5}')
actions=$(cat "$W"/roll*.out "$W/ret.out" | grep -v '^$' | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}')
echo "# ${SECONDS_LOAD} s: $tx application statements, worst ${worst_ms} ms (lock_timeout ${timeout_ms} ms); rollover actions: $actions"
echo "# slowest statements (ms): $(cat "$W"/app.* | awk '{print int($3/1000)}' | sort -n | tail -5 | tr '\n' ' ')"

[ "$app_rc" = 0 ] && [ "${failed:-x}" = 0 ] && [ "$tx" -gt 100 ]
ok $? "no application statement failed ($tx ran, failed: ${failed:-?}, pgbench exit $app_rc)"
if [ "$worst_ms" -lt $((timeout_ms + MARGIN_MS)) ]; then r=0; else
    r=1
    echo "# application statements running over 150 ms (sampled every 0.2 s): what they waited for, who blocked them:"
    grep -v '^$' "$W/blockers.log" | head -n 40 | sed 's/^/#   /'
    echo "# lock waits the server logged (log_lock_waits):"
    grep -A2 'still waiting for\|acquired .* after' "$(cluster_dir load)/server.log" | head -n 30 | sed 's/^/#   /'
fi
ok $r "no application statement waited longer than lock_timeout ${timeout_ms} ms + ${MARGIN_MS} ms (worst ${worst_ms} ms)"
[ ! -s "$W/roll1.err" ] && [ ! -s "$W/roll2.err" ] && [ ! -s "$W/roll3.err" ] && [ ! -s "$W/roll4.err" ] && [ ! -s "$W/ret.err" ]
ok $? "no rollover or retention call raised an error ($(cat "$W"/*.err | head -c 300))"
created=$(cat "$W"/roll*.out "$W/ret.out" | grep -c '^created$')
dropped=$(cat "$W"/roll*.out "$W/ret.out" | grep -c '^dropped$')
[ "$created" -gt 10 ] && [ "$dropped" -gt 10 ]
ok $? "the loops did real DDL on the hot table while it was loaded ($created partitions created, $dropped dropped)"
samples1=$(q -c "SELECT count(*) FROM capacity_sample")
worker_err=$(grep -c 'ERROR' "$(cluster_dir load)/server.log")
[ "$samples1" -gt "$samples0" ]; ok $? "the worker sampled throughout ($((samples1 - samples0)) samples)"
r=$(q -c "SELECT (SELECT count(*) FROM \"Event\" WHERE body = 'app') || ' ' || (SELECT count(*) FROM ledger)
              || ' ' || (SELECT count(*) FROM \"Event\" e JOIN ledger l ON l.event_id = e.id WHERE e.body = 'app')")
set -- $r
[ "$1" = "$2" ] && [ "$2" = "$3" ] && [ "$1" -gt 0 ]; ok $? "inserted = stored: $1 rows in Event, $2 in the ledger, $3 matched"
r=$(q -c "SELECT count(*) FROM \"Event_default\"")
[ "$r" = 0 ]; ok $? "no row waits in the default partition ($r)"
r=$(q -c "SELECT count(*) FROM pg_class c WHERE c.relname LIKE 'Event\_p%' AND c.relkind IN ('r', 'p') AND NOT c.relispartition")
[ "$r" = 0 ]; ok $? "no partition-named table is left unattached ($r)"
[ "$worker_err" = 0 ]; ok $? "no ERROR in the server log: the worker's own rounds and the DDL retries stayed clean ($worker_err)"
