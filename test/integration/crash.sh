#!/usr/bin/env bash
# Crashes in the middle of the extension's work, on a server with the
# worker loaded.  Each time the server recovers, and then: no partition is
# half-made (every period has all its hash leaves), no table named as a
# partition is left unattached (an interrupted retention drop is finished
# by the next rollover), every row is still there, and a rollover completes.
#   1. kill -9 of a backend running capacity_rollover() (one transaction,
#      thousands of tables being built);
#   2. kill -9 of a backend running CALL capacity_rollover_proc() (commits
#      period by period);
#   3. pg_ctl stop -m immediate during a rollover;
#   4. kill -9 of the worker while it rolls a new table over on its own;
#   5. kill -9 while DETACH CONCURRENTLY waits (a pending detach), and the
#      state a crash between the detach and the drop leaves.
# Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55453
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
DIR=$(cluster_dir crash)
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p $PORT -U postgres -d crash "$@"; }
trap 'kill $(jobs -p) 2>/dev/null; cluster_stop crash' EXIT
wait_for() {  # wait_for SECONDS 'CONDITION'
    local t=$1 cond=$2
    for _ in $(seq 1 $((t * 10))); do eval "$cond" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
server_up() { "$PGBIN/pg_isready" -q -h "$DIR" -p $PORT && q -c "SELECT 1" >/dev/null 2>&1; }
pid_of() { q -c "SELECT pid FROM pg_stat_activity WHERE query LIKE '%$1%' AND pid <> pg_backend_pid() AND state = 'active' LIMIT 1"; }
# periods of TABLE whose hash leaves are not all there (half-made)
half_made() {
    q -c "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = '\"$1\"'::regclass AND c.relkind = 'p'
             AND (SELECT count(*) FROM pg_inherits l WHERE l.inhparent = c.oid) <> $2"
}
# tables named like a partition of TABLE that are not partitions
orphans() {
    q -c "SELECT count(*) FROM pg_class c WHERE c.relname LIKE '$1\_p%' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
}
periods() { q -c "SELECT count(*) FROM pg_inherits WHERE inhparent = '\"$1\"'::regclass"; }
rows() { q -c "SELECT count(*) || ':' || coalesce(sum(hashtext(\"orgId\" || t::text)), 0) FROM \"$1\""; }

cluster_start crash $PORT "shared_preload_libraries = 'matter_capacity'" \
    "matter_capacity.database = 'crash'" "matter_capacity.sample_interval = 2" \
    "matter_capacity.rollover_interval = 0" "restart_after_crash = on" \
    "max_locks_per_transaction = 256"
psql -X -q -h "$DIR" -p $PORT -U postgres -d postgres -c "CREATE DATABASE crash"
q >/dev/null <<'SQL'
CREATE EXTENSION matter_capacity;
-- the worker's rollover is off (rollover_interval = 0) except in part 4
CREATE FUNCTION make_big(tbl text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE %I ("orgId" text NOT NULL, t timestamptz NOT NULL, body text) PARTITION BY RANGE (t)', tbl);
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L) PARTITION BY HASH ("orgId")',
                   tbl || '_p20261101', tbl, '2026-11-01 00:00+00', '2026-11-22 00:00+00');
    FOR r IN 0..7 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS 8, REMAINDER %s)',
                       tbl || '_p20261101_h' || r, tbl || '_p20261101', r);
    END LOOP;
    EXECUTE format('INSERT INTO %I SELECT ''org'' || (g %% 50), ''2026-11-01 00:00+00''::timestamptz + g * interval ''1 minute'', ''x''
                    FROM generate_series(1, 20000) g', tbl);
END $$;
SQL
MANAGE="SELECT capacity_manage('\"%s\"', 't', 'day', 'orgId', 8, premake => 600, default_partition => false)"

# 1 + 3 share a shape: start a rollover, crash when it is half-way, recover
crash_during() {  # crash_during TABLE 'ROLLOVER SQL' 'READY CONDITION' kill|immediate
    local tbl=$1 sql=$2 ready=$3 how=$4
    q -c "SELECT make_big('$tbl')" -c "$(printf "$MANAGE" "$tbl")" >/dev/null
    BEFORE=$(rows "$tbl")
    q -c "$sql" >/dev/null 2>"$MC_RUN/crash.err" &
    local bg=$!
    wait_for 60 "$ready" || echo "# never saw the rollover half-way"
    if [ "$how" = kill ]; then
        kill -9 "$(pid_of capacity_rollover)"
    else
        as_server_user "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null
        as_server_user "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
    fi
    wait $bg; RC=$?
    wait_for 60 server_up
}
# after a crash: nothing half-made or orphaned, rows intact, rollover completes
check_after() {  # check_after TABLE LABEL
    local tbl=$1 label=$2 h o r n
    h=$(half_made "$tbl" 8); o=$(orphans "$tbl"); r=$(rows "$tbl")
    [ "$h" = 0 ] && [ "$o" = 0 ]; ok $? "$label: no half-made period ($h) and no orphaned table ($o)"
    [ "$r" = "$BEFORE" ]; ok $? "$label: every row is still there ($r)"
    # one call builds what fits in the lock table and reports the rest 'deferred'
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        d=$(q -c "SELECT count(*) FROM capacity_rollover('\"$tbl\"', as_of => '2026-11-22 00:00+00') WHERE action = 'deferred'" 2>/dev/null)
        [ "$d" = 0 ] && break
    done
    n=$(periods "$tbl")
    [ "$n" = 602 ] && [ "$(half_made "$tbl" 8)" = 0 ]; ok $? "$label: the next rollovers complete (601 periods + the old one: $n)"
}

# --- 1. kill -9 of a backend in capacity_rollover() -----------------------
crash_during Big1 "SELECT count(*) FROM capacity_rollover('\"Big1\"', as_of => '2026-11-22 00:00+00')" \
    '[ "$(q -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.query LIKE '\''%capacity_rollover(%'\'' AND a.pid <> pg_backend_pid()")" -gt 1000 ]' kill
echo "# killed after >1000 tables were built in its transaction (client exit $RC: $(head -c 80 "$MC_RUN/crash.err"))"
[ "$RC" != 0 ] && [ "$(periods Big1)" = 1 ]; ok $? "kill -9 in capacity_rollover(): the crash undid the whole uncommitted rollover"
check_after Big1 "kill -9 in capacity_rollover()"

# --- 2. kill -9 of a backend in CALL capacity_rollover_proc() --------------
crash_during Big2 "CALL capacity_rollover_proc('\"Big2\"', as_of => '2026-11-22 00:00+00')" \
    '[ "$(periods Big2)" -gt 50 ]' kill
n=$(periods Big2)
[ "$RC" != 0 ] && [ "$n" -gt 50 ] && [ "$n" -lt 602 ]; ok $? "kill -9 in capacity_rollover_proc(): the periods committed before the crash stay ($n)"
check_after Big2 "kill -9 in capacity_rollover_proc()"

# --- 3. immediate shutdown during a rollover ---------------------------------
crash_during Big3 "CALL capacity_rollover_proc('\"Big3\"', as_of => '2026-11-22 00:00+00')" \
    '[ "$(periods Big3)" -gt 50 ]' immediate
n=$(periods Big3)
[ "$RC" != 0 ] && [ "$n" -gt 50 ] && [ "$n" -lt 602 ]; ok $? "pg_ctl stop -m immediate mid-rollover, restarted: $n periods committed"
check_after Big3 "immediate shutdown"

# --- 4. kill -9 of the worker mid-task ---------------------------------------
q -c "SELECT make_big('Big4')" >/dev/null
BEFORE=$(rows Big4)
worker() { q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'matter_capacity'"; }
q -c "SELECT capacity_manage('\"Big4\"', 't', 'day', 'orgId', 8, premake => 1000, default_partition => false)" >/dev/null
q -d postgres -c "ALTER SYSTEM SET matter_capacity.rollover_interval = 2" -c "SELECT pg_reload_conf()" >/dev/null
wait_for 60 '[ "$(periods Big4)" -gt 20 ]'
wpid=$(worker); n0=$(periods Big4)
kill -9 "$wpid"
sleep 1   # let the postmaster see the death and restart first, or server_up can answer before it
wait_for 60 server_up
n1=$(periods Big4)
[ -n "$wpid" ] && [ "$n0" -lt 1000 ] && [ "$n1" -lt 1000 ]; ok $? "kill -9 of the worker while it rolled Big4 over ($n1 of 1001 periods + the old one made)"
h=$(half_made Big4 8); o=$(orphans Big4)
[ "$h" = 0 ] && [ "$o" = 0 ]; ok $? "worker killed: no half-made period ($h) and no orphaned table ($o)"
left_to_do() { q -c "SELECT count(*) FROM capacity_rollover('\"Big4\"', dry_run => true) WHERE action = 'created'"; }
wait_for 120 '[ "$(left_to_do)" = 0 ]'
n=$(periods Big4); w=$(worker)
[ "$(left_to_do)" = 0 ] && [ "$n" -gt 1000 ] && [ -n "$w" ] && [ "$w" != "$wpid" ]
ok $? "the restarted worker finishes the rollover on its own ($n periods)"
q -d postgres -c "ALTER SYSTEM SET matter_capacity.rollover_interval = 0" -c "SELECT pg_reload_conf()" >/dev/null
[ "$(rows Big4)" = "$BEFORE" ]; ok $? "worker killed: every row is still there"

# --- 5. interrupted retention: between DETACH CONCURRENTLY and DROP ----------
q >/dev/null <<'SQL'
CREATE TABLE "Old" ("orgId" text NOT NULL, t timestamptz NOT NULL) PARTITION BY RANGE (t);
SELECT capacity_manage('"Old"', 't', 'week', premake => 1, default_partition => false);
SELECT count(*) FROM capacity_rollover('"Old"', as_of => '2026-10-01 00:00+00');
SELECT count(*) FROM capacity_rollover('"Old"', as_of => '2026-10-15 00:00+00');
SELECT count(*) FROM capacity_rollover('"Old"', as_of => '2026-11-22 00:00+00');
SELECT capacity_manage('"Old"', 't', 'week', premake => 1, default_partition => false,
                       retention => '2 weeks', retention_action => 'drop');
SQL
old=$(q -c "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = '\"Old\"'::regclass ORDER BY 1 LIMIT 2" | tr '\n' ' ')
set -- $old
first=$1
# The detach and the drop are two transactions, and no lock can hold the
# gap open (the detach's second phase takes ACCESS EXCLUSIVE on the
# partition itself), so the state a crash there leaves is made directly:
# the drop recorded (as the procedure records it before detaching), the
# partition detached, the drop never run.
q -c "INSERT INTO capacity_pending_drop (partition_oid, table_oid, partition_name)
      VALUES ('\"$first\"'::regclass, '\"Old\"'::regclass, '$first')" \
  -c "ALTER TABLE \"Old\" DETACH PARTITION \"$first\""
o=$(orphans Old)
[ "$o" = 1 ]; ok $? "a crash between detach and drop leaves $first detached, not dropped ($o orphan)"
q -c "SELECT action || ' ' || partition_name || ': ' || detail FROM capacity_rollover('\"Old\"', as_of => '2026-11-22 00:00+00')" >"$MC_RUN/old.out" 2>&1
sed 's/^/# /' "$MC_RUN/old.out"
grep -q "^dropped $first: detached by an earlier retention run" "$MC_RUN/old.out" && [ "$(orphans Old)" = 0 ] \
    && [ "$(q -c "SELECT count(*) FROM capacity_pending_drop")" = 0 ]
ok $? "the next rollover finishes the interrupted drop; no orphan or record is left"

# --- 5b. interrupted DETACH CONCURRENTLY: a pending detach -------------------
q -c "SELECT count(*) FROM capacity_rollover('\"Old\"', as_of => '2026-10-01 00:00+00')" >/dev/null
q -c "SELECT capacity_manage('\"Old\"', 't', 'week', premake => 1, default_partition => false)" >/dev/null
q -c "SELECT count(*) FROM capacity_rollover('\"Old\"', as_of => '2026-10-01 00:00+00')" >/dev/null
q -c "SELECT capacity_manage('\"Old\"', 't', 'week', premake => 1, default_partition => false, retention => '2 weeks', retention_action => 'drop')" >/dev/null
# a reader of the parent makes DETACH CONCURRENTLY wait in its second phase
q -c "BEGIN" -c "SELECT count(*) FROM \"Old\"" -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
sleep 0.5
q -c "CALL capacity_rollover_proc('\"Old\"', as_of => '2026-11-22 00:00+00')" >/dev/null 2>&1 &
wait_for 20 '[ "$(q -c "SELECT count(*) FROM pg_inherits WHERE inhparent = '\''\"Old\"'\''::regclass AND inhdetachpending")" -ge 1 ]'
ok $? "DETACH CONCURRENTLY of an old week waits for the reader (detach pending)"
kill -9 "$(pid_of 'DETACH PARTITION')"
wait
wait_for 60 server_up
p=$(q -c "SELECT count(*) FROM pg_inherits WHERE inhparent = '\"Old\"'::regclass AND inhdetachpending")
[ "$p" -ge 1 ]; ok $? "kill -9 during DETACH CONCURRENTLY leaves the detach pending ($p)"
# (after recovery autovacuum may hold the old week for a moment: then the
# rollover says skipped_locked and the next one does it, as in production)
for _ in 1 2 3 4 5 6 7 8 9 10; do
    q -c "SELECT action || ' ' || partition_name FROM capacity_rollover('\"Old\"', as_of => '2026-11-22 00:00+00')" >"$MC_RUN/old.out" 2>&1
    sed 's/^/# /' "$MC_RUN/old.out"
    grep -q skipped_locked "$MC_RUN/old.out" || break
    sleep 1
done
p=$(q -c "SELECT count(*) FROM pg_inherits WHERE inhparent = '\"Old\"'::regclass AND inhdetachpending")
grep -q '^dropped' "$MC_RUN/old.out" && ! grep -q ERROR "$MC_RUN/old.out" && [ "$p" = 0 ] && [ "$(orphans Old)" = 0 ]
ok $? "capacity_rollover() (plain DETACH) finishes a pending detach with FINALIZE and drops it"

! grep -q 'terminated by signal 11\|terminated by signal 6' "$DIR/server.log"
ok $? "no segfault or abort in the server log (only the kills the test made)"
