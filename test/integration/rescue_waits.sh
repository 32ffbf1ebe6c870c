#!/usr/bin/env bash
# Step 1 of the rescue (moving a period's rows out of the default partition
# under weak locks) never waits without bound (review 4):
#   1. F14: an application transaction left idle holding one row of the
#      default partition (SELECT ... FOR UPDATE) stops the move within
#      matter_capacity.lock_timeout: the procedure reports the period failed
#      (55P03, naming the row lock), releases the rows it had taken (an
#      application UPDATE of one of them is not kept waiting), loses no row,
#      and moves them all once the transaction is gone.
#   2. F10: a table owner's slow trigger on the default partition keeps the
#      background worker inside the move at most one sample interval: the
#      period is reported failed (54000, naming the trigger), sampling goes
#      on, no row is lost; without the trigger the worker moves the rows.
#   3. F14 in the worker's conversion backfill: a batch waiting for a row an
#      application holds ends after the lock timeout (a warning that says
#      so, not that the loopback could not connect), sampling goes on, and
#      the backfill finishes once the row is free.
#   4. F13 in the worker: a policy without a default partition whose table
#      keeps one (rows nothing covers) is retired with the bounded plain
#      DETACH; the worker used to wait for its own loopback for ever,
#      holding the table ACCESS EXCLUSIVE.
# Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55498
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir rwaits)" -p $PORT -U postgres -d postgres "$@"; }
wait_for() {  # wait_for SECONDS 'CONDITION'
    local t=$1 cond=$2
    for _ in $(seq 1 $((t * 4))); do eval "$cond" >/dev/null 2>&1 && return 0; sleep 0.25; done
    return 1
}
W=$(mktemp -d)
chmod 777 "$W"
BG=
trap '[ -n "$BG" ] && kill $BG 2>/dev/null; cluster_stop rwaits; rm -rf "$W"' EXIT

cluster_start rwaits $PORT "shared_preload_libraries = 'matter_capacity'" \
    "matter_capacity.database = 'postgres'" "matter_capacity.sample_interval = 1" \
    "matter_capacity.rollover_interval = 0" "matter_capacity.backfill_batches = 0"
timeout_ms=$(q -c "LOAD 'matter_capacity'; SHOW matter_capacity.lock_timeout" | tr -dc 0-9)

# --- 1. F14 --------------------------------------------------------------------
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE rl (id int, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT capacity_manage('rl', 'ts', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('rl', as_of => '2026-11-10 00:00+00');
INSERT INTO rl SELECT i, '2026-11-05 10:00+00' FROM generate_series(1, 10) i;   -- wait in rl_default
SQL
PGAPPNAME=mc_idle psql -X -q -h "$(cluster_dir rwaits)" -p $PORT -U postgres -d postgres \
    -c "BEGIN" -c "SELECT id FROM rl WHERE id = 3 FOR UPDATE" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
BG=$!
wait_for 10 '[ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '\''mc_idle'\'' AND wait_event = '\''PgSleep'\''")" = 1 ]'
# statement_timeout only ends a hang of the old code
out=$(q 2>&1 <<'SQL'
SET statement_timeout = '30s';
CALL capacity_rollover_proc('rl', as_of => '2026-11-10 00:00+00');
SQL
)
rc=$?
echo "$out" | sed 's/^/# /'
[ $rc = 0 ] && echo "$out" | grep -q "moving the rows of rl_p20261105 out of the default partition rl_default waited longer than matter_capacity.lock_timeout ($timeout_ms ms) for a row (or the partition) another session holds locked"
ok $? "F14: a row held by an idle transaction ends step 1 within the lock timeout, and is named (rc $rc)"
[ "$(q -c "SELECT count(*) FROM capacity_rollover_log WHERE action = 'failed' AND partition_name IS NULL
             AND detail LIKE '%rl_p20261105%SQLSTATE 55P03%idle in transaction%'")" = 1 ]
ok $? "F14: reported as failed (55P03) with a hint"
# the rows the move had taken are free again: an UPDATE of one of them does not wait
q -c "SET lock_timeout = '${timeout_ms}ms'" -c "UPDATE rl SET id = 1 WHERE id = 1" >/dev/null 2>&1
ok $? "F14: an application UPDATE of a row step 1 had taken does not wait for the rollover"
[ "$(q -c "SELECT count(*) FROM ONLY rl_default")" = 10 ] && [ -z "$(q -c "SELECT to_regclass('rl_p20261105')")" ]
ok $? "F14: no row lost, no unattached table left"
kill $BG 2>/dev/null; wait $BG 2>/dev/null; BG=
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mc_idle'" >/dev/null
q -c "CALL capacity_rollover_proc('rl', as_of => '2026-11-10 00:00+00')" >/dev/null 2>&1
[ "$(q -c "SELECT count(*) FROM ONLY rl_default")" = 0 ] && [ "$(q -c "SELECT count(*) FROM rl_p20261105")" = 10 ]
ok $? "F14: once the transaction is gone the next rollover moves the rows"

# --- 2. F10 --------------------------------------------------------------------
# relative to now(): the worker rolls over at now(); only actions are checked
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE ROLE slow_owner;
GRANT CREATE ON SCHEMA public TO slow_owner;
CREATE TABLE slow (id int, at timestamptz NOT NULL) PARTITION BY RANGE (at);
ALTER TABLE slow OWNER TO slow_owner;
SELECT capacity_manage('slow', 'at', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('slow', as_of => now() - interval '5 days');
INSERT INTO slow SELECT i, now() - interval '2 days' FROM generate_series(1, 3) i;   -- no period yet
SET ROLE slow_owner;
CREATE FUNCTION slow_del() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(100); RETURN OLD; END $$;
CREATE TRIGGER slow_del BEFORE DELETE ON slow_default FOR EACH ROW EXECUTE FUNCTION slow_del();
RESET ROLE;
SQL
part=$(q -c "SELECT 'slow_p' || to_char((now() - interval '2 days') AT TIME ZONE 'UTC', 'YYYYMMDD')")
q -c "ALTER SYSTEM SET matter_capacity.rollover_interval = 2" -c "SELECT pg_reload_conf()" >/dev/null
failed() { q -c "SELECT count(*) FROM capacity_rollover_log WHERE table_name = 'public.slow' AND action = 'failed'
                   AND detail LIKE '%$part%took longer than the worker''s limit of 1000 ms%slow_del%SQLSTATE 54000%'"; }
wait_for 60 '[ "$(failed)" -ge 1 ]'
ok $? "F10: the worker gives up a move whose trigger is slow after one sample interval, naming the trigger"
before=$(q -c "SELECT count(DISTINCT sampled_at) FROM capacity_sample WHERE indicator = 'database_bytes'")
wait_for 20 '[ "$(q -c "SELECT count(DISTINCT sampled_at) FROM capacity_sample WHERE indicator = '\''database_bytes'\''")" -ge $((before + 3)) ]'
ok $? "F10: sampling goes on while the trigger is in place"
[ "$(q -c "SELECT count(*) FROM ONLY slow_default")" = 3 ] && [ "$(q -c "SELECT count(*) FROM slow")" = 3 ]
ok $? "F10: no row lost"
q -c "DROP TRIGGER slow_del ON slow_default" >/dev/null
wait_for 30 '[ "$(q -c "SELECT count(*) FROM ONLY slow_default")" = 0 ]' && [ "$(q -c "SELECT count(*) FROM $part")" = 3 ]
ok $? "F10: without the trigger the worker moves the rows into $part"
q -c "ALTER SYSTEM RESET matter_capacity.rollover_interval" -c "SELECT pg_reload_conf()" >/dev/null

# --- 3. F14, the worker's backfill ---------------------------------------------
LOG=$(cluster_dir rwaits)/server.log
q >/dev/null 2>&1 <<'SQL'
CREATE TABLE conv (id bigint GENERATED ALWAYS AS IDENTITY, t timestamptz NOT NULL, PRIMARY KEY (id, t));
INSERT INTO conv (t) SELECT now() - g * interval '1 minute' - interval '1 minute' FROM generate_series(1, 3000) g;
CALL capacity_convert('conv', 't', 'day', premake => 2);
SQL
PGAPPNAME=mc_idle psql -X -q -h "$(cluster_dir rwaits)" -p $PORT -U postgres -d postgres \
    -c "BEGIN" -c "SELECT id FROM conv WHERE id = 5 FOR UPDATE" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
BG=$!
wait_for 10 '[ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '\''mc_idle'\'' AND wait_event = '\''PgSleep'\''")" = 1 ]'
q -c "ALTER SYSTEM SET matter_capacity.backfill_batches = 1" -c "SELECT pg_reload_conf()" >/dev/null
wait_for 60 'grep -q "conversion backfill failed: .*lock timeout" "$LOG"'
ok $? "F14: the worker's backfill batch gives up on a row an application holds, after the lock timeout"
grep -A1 "conversion backfill failed: .*lock timeout" "$LOG" | grep -q "HINT:  The batch waits at most matter_capacity.lock_timeout" &&
    ! grep -A1 "conversion backfill failed: .*lock timeout" "$LOG" | grep -q loopback_conninfo
ok $? "F14: the warning says so (not that the loopback could not connect)"
before=$(q -c "SELECT count(DISTINCT sampled_at) FROM capacity_sample WHERE indicator = 'database_bytes'")
wait_for 20 '[ "$(q -c "SELECT count(DISTINCT sampled_at) FROM capacity_sample WHERE indicator = '\''database_bytes'\''")" -ge $((before + 3)) ]'
ok $? "F14: sampling goes on while the row is held"
kill $BG 2>/dev/null; wait $BG 2>/dev/null; BG=
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mc_idle'" >/dev/null
q -c "ALTER SYSTEM SET matter_capacity.backfill_batches = 100" -c "SELECT pg_reload_conf()" >/dev/null
wait_for 60 '[ "$(q -c "SELECT state FROM capacity_conversions WHERE table_name = '\''conv'\''::regclass")" = done ]' &&
    [ "$(q -c "SELECT count(*) FROM conv")" = 3000 ]
ok $? "F14: once the row is free the worker finishes the backfill, no row lost"

# --- 4. F13, the worker ----------------------------------------------------------
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE TABLE wd (id int, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT capacity_manage('wd', 'ts', 'day', premake => 1, retention => '2 days', retention_action => 'drop');
SELECT count(*) FROM capacity_rollover('wd', as_of => now() - interval '6 days');
INSERT INTO wd VALUES (1, now() - interval '6 days'), (2, '2000-01-01 00:00+00');   -- 2 stays in the default
SELECT capacity_manage('wd', 'ts', 'day', premake => 1, retention => '2 days', retention_action => 'drop',
                       default_partition => false);
SQL
q -c "ALTER SYSTEM SET matter_capacity.rollover_interval = 2" -c "SELECT pg_reload_conf()" >/dev/null
wait_for 30 '[ "$(q -c "SELECT count(*) FROM capacity_rollover_log WHERE table_name = '\''public.wd'\'' AND action = '\''dropped'\''")" = 2 ]'
ok $? "F13: the worker retires both expired periods of a table keeping its default partition"
q -c "SET lock_timeout = '${timeout_ms}ms'" -c "SELECT count(*) FROM wd" >/dev/null 2>&1 &&
    [ "$(q -c "SELECT id FROM ONLY wd_default")" = 2 ] && [ "$(q -c "SELECT count(*) FROM capacity_pending_drop")" = 0 ]
ok $? "F13: the table is readable, the kept row is still there, no drop left pending"
q -c "ALTER SYSTEM RESET matter_capacity.rollover_interval" -c "SELECT pg_reload_conf()" >/dev/null
