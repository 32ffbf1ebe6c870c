#!/usr/bin/env bash
# Three defects of the rollover engine under concurrency, each with real
# sessions on a cluster of its own:
#   1. An INSERT of a row for a period the rollover is creating, queued
#      behind the rollover, failed with 23514 once the rollover committed:
#      it had routed the row with the old bounds to the default partition,
#      whose constraint the ATTACH changed.  It must land in the new period.
#   2. A retention DETACH while another session holds the old partition
#      (not the parent): DETACH took the parent, then waited up to the lock
#      timeout for the partition with the application queued behind it;
#      now no application statement waits longer than the lock timeout
#      (the allowed lock-bound check).
#   3. Autovacuum of the default partition (made to crawl) held it against
#      every attach attempt; the rollover now has it give way, as the
#      conversion does, and creates its period.
# Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55464
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir races)" -p $PORT -U postgres -d postgres "$@"; }
W=$(mktemp -d)
chmod 777 "$W"
trap 'cluster_stop races; rm -rf "$W"' EXIT

cluster_start races $PORT "autovacuum_naptime = 1"
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" (id bigint, "createdAt" timestamptz NOT NULL) PARTITION BY RANGE ("createdAt");
SELECT capacity_manage('"Event"', 'createdAt', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('"Event"', as_of => '2026-11-20 00:00+00');
SQL

# wait until a session whose query matches $1 waits for a lock
waiting_for_lock() {
    for _ in $(seq 1 100); do
        [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '$1'")" != 0 ] && return 0
        sleep 0.1
    done
    return 1
}

# --- 1. an INSERT queued behind the rollover that creates its period ----
coproc R { psql -X -q -At -h "$(cluster_dir races)" -p $PORT -U postgres -d postgres 2>&1; }
echo "BEGIN; SELECT count(*) FROM capacity_rollover('\"Event\"', as_of => '2026-11-23 00:00+00'); SELECT 'rolled';" >&"${R[1]}"
read -r -t 30 line <&"${R[0]}"; read -r -t 30 line <&"${R[0]}"
[ "$line" = rolled ]; ok $? "race 1: the rollover made its periods and holds them uncommitted ($line)"
q -c "INSERT INTO \"Event\" VALUES (1, '2026-11-23 12:00+00')" >"$W/insert.out" 2>&1 &
ins=$!
waiting_for_lock 'INSERT INTO "Event"%'; ok $? "race 1: the INSERT of a row of the new period waits for the rollover"
echo "COMMIT;" >&"${R[1]}"
wait $ins; rc=$?
echo "# INSERT said: $(tr '\n' ' ' <"$W/insert.out")"
[ $rc = 0 ] && ! grep -q 23514 "$W/insert.out"; ok $? "race 1: the queued INSERT succeeds once the rollover commits (no 23514)"
[ "$(q -c "SELECT tableoid::regclass FROM \"Event\" WHERE id = 1")" = '"Event_p20261123"' ]; ok $? "race 1: the row is in the new period, not the default partition"
echo "\\q" >&"${R[1]}"; wait "$R_PID" 2>/dev/null

# --- 2. retention DETACH while a session holds the old partition ---------
timeout_ms=300
q >/dev/null <<SQL
LOAD 'matter_capacity';
ALTER SYSTEM SET matter_capacity.lock_timeout = $timeout_ms;
SELECT pg_reload_conf();
SELECT capacity_manage('"Event"', 'createdAt', 'day', premake => 1, retention => '2 days');
INSERT INTO "Event" SELECT g, '2026-11-20 00:00+00'::timestamptz + g * interval '1 minute' FROM generate_series(1, 5000) g;
SQL
# the holder reads the oldest period directly (it holds no lock on the parent)
q -c "BEGIN; SELECT count(*) FROM \"Event_p20261120\"; SELECT pg_sleep(6); COMMIT;" >/dev/null &
holder=$!
sleep 0.5
cat >"$W/app.sql" <<'SQL'
SELECT count(*) FROM "Event" WHERE "createdAt" >= '2026-11-22' AND "createdAt" < '2026-11-23';
SQL
(cd "$W" && "$PGBIN/pgbench" -n -c 2 -T 4 -f app.sql -h "$(cluster_dir races)" -p $PORT -U postgres postgres \
    --log --log-prefix=pgbench_log >"$W/pgbench.out" 2>&1) &
app=$!
sleep 0.5
q -c "SELECT action || ' ' || coalesce(partition_name, '') FROM capacity_rollover('\"Event\"', as_of => '2026-11-24 00:00+00')" >"$W/retention.out" 2>&1
wait $app; wait $holder
worst=$(cat "$W"/pgbench_log.* | awk 'BEGIN{m=0} {if ($3>m) m=$3} END{printf "%d", m/1000}')
n=$(cat "$W"/pgbench_log.* | wc -l)
echo "# retention said: $(tr '\n' ' ' <"$W/retention.out"); application: $n statements, worst $worst ms"
grep -q 'skipped_locked Event_p20261120' "$W/retention.out"; ok $? "race 2: the held period is reported skipped_locked"
[ "$n" -gt 10 ] && [ "$worst" -lt "$timeout_ms" ]; ok $? "race 2: no application statement waited the lock timeout ($worst ms < $timeout_ms ms)"
q -c "SELECT action || ' ' || partition_name FROM capacity_rollover('\"Event\"', as_of => '2026-11-24 00:00+00')" >"$W/retention2.out"
grep -q 'detached Event_p20261120' "$W/retention2.out"; ok $? "race 2: once the holder is gone the next rollover detaches it"
q >/dev/null -c "LOAD 'matter_capacity'" -c "ALTER SYSTEM RESET matter_capacity.lock_timeout" -c "SELECT pg_reload_conf()"

# --- 3. autovacuum of the default partition gives way -------------------
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE TABLE "Audit" (id bigint, "createdAt" timestamptz NOT NULL, body text) PARTITION BY RANGE ("createdAt");
SELECT capacity_manage('"Audit"', 'createdAt', 'day', premake => 1, retention => '7 days');
SELECT count(*) FROM capacity_rollover('"Audit"', as_of => '2026-11-20 00:00+00');
ALTER TABLE "Audit_default" SET (autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1,
                                 autovacuum_vacuum_insert_threshold = 100, autovacuum_vacuum_insert_scale_factor = 0);
-- rows older than the retention: they stay in the default partition
INSERT INTO "Audit" SELECT g, '2025-01-01 00:00+00'::timestamptz + (g % 1000) * interval '1 minute', md5(g::text)
  FROM generate_series(1, 100000) g;
SQL
av=0
for _ in $(seq 1 240); do
    av=$(q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND query LIKE '%Audit_default%'")
    [ "$av" != 0 ] && break
    sleep 0.25
done
[ "$av" != 0 ]; ok $? "race 3: autovacuum works on the default partition"
q -c "SELECT action || ' ' || coalesce(partition_name, '') || ' ' || coalesce(detail, '') FROM capacity_rollover('\"Audit\"', as_of => '2026-11-22 00:00+00')" >"$W/av.out" 2>&1
echo "# rollover said: $(tr '\n' ' ' <"$W/av.out")"
grep -q '^created Audit_p20261122' "$W/av.out" && ! grep -q skipped_locked "$W/av.out"; ok $? "race 3: the rollover had autovacuum give way and created its periods"
[ "$(q -c "SELECT count(*) FROM \"Audit_default\"")" = 100000 ]; ok $? "race 3: no row lost"
