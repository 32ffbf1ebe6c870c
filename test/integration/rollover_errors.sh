#!/usr/bin/env bash
# Issue 13 section 2 on a real server with the worker preloaded: an error
# while a table is rolled over neither kills the worker nor stops the other
# tables, sampling or the EXPLAIN checks (cases 20, security 14); a blocked
# table is skipped and sampling keeps its schedule (case 20 part B); the
# procedure gives up behind a long reader like the function, and a
# cancelled rollover leaves no guard behind (case 09); no other role can
# hold the busy guard (security 08).  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
P=55461
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -h "$(cluster_dir r_err)" -p $P -U postgres -d postgres "$@"; }
wait_for() {  # wait_for SECONDS 'CONDITION'
    local t=$1 cond=$2
    for _ in $(seq 1 $((t * 4))); do eval "$cond" >/dev/null 2>&1 && return 0; sleep 0.25; done
    return 1
}
worker_pid() { q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'matter_capacity'"; }
parts() { q -c "SELECT count(*) FROM capacity_partitions WHERE table_name = '$1'::regclass AND level = 1"; }
trap 'cluster_stop r_err' EXIT

cluster_start r_err $P "shared_preload_libraries = 'matter_capacity'" \
    "matter_capacity.database = 'postgres'" "matter_capacity.sample_interval = 1" \
    "matter_capacity.rollover_interval = 0" "matter_capacity.explain_interval = 2" \
    "log_min_messages = warning"
LOG=$(cluster_dir r_err)/server.log
W=$(cluster_dir r_err)

# --- part A: a name collision on one table (real clock) ----------------------
q <<'SQL' >/dev/null
CREATE EXTENSION matter_capacity;
CREATE ROLE tenant_owner LOGIN;
CREATE SCHEMA tenant AUTHORIZATION tenant_owner;
SET ROLE tenant_owner;
CREATE TABLE tenant.ledger (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
RESET ROLE;
CREATE TABLE orders (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE other (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('orders', 'at', 'day', premake => 2);
SELECT capacity_manage('other', 'at', 'day', premake => 2);
SELECT capacity_manage('tenant.ledger', 'at', 'day', premake => 2);
-- after capacity_manage (which refuses a taken name): the table appears later
SELECT format('CREATE TABLE %I (note text)', 'orders_p' || to_char(now() AT TIME ZONE 'UTC' + interval '1 day', 'YYYYMMDD')) \gexec
ALTER SYSTEM SET matter_capacity.rollover_interval = 2;
SELECT pg_reload_conf();
SQL
wait_for 10 '[ -n "$(worker_pid)" ]'
pid1=$(worker_pid)
wait_for 15 '[ "$(parts other)" -ge 4 ] && [ "$(parts tenant.ledger)" -ge 4 ]'
ok $? "the worker rolls the other tables over although one table fails (other: $(parts other), tenant.ledger: $(parts tenant.ledger) partitions)"
wait_for 10 '[ "$(q -c "SELECT count(*) FROM capacity_rollover_log WHERE table_name = '\''public.orders'\'' AND action = '\''failed'\''")" -ge 2 ]'
ok $? "the failing table is reported as 'failed' rows, round after round"
[ "$(parts orders)" -ge 3 ]; ok $? "the failing table gets every period but the blocked one ($(parts orders) partitions)"
q -c "SELECT detail FROM capacity_rollover_log WHERE action = 'failed' LIMIT 1" | grep -q 'hint: Rename or drop public.orders_p'
ok $? "the failed row names the blocking relation and says what to do"
grep -q 'WARNING:  matter_capacity: rollover of public.orders, partition orders_p.* failed' "$LOG"
ok $? "the failure is in the server log"
[ "$(worker_pid)" = "$pid1" ] && ! grep -qE 'FATAL|exited with exit code|terminated by signal' "$LOG"
ok $? "the worker survives: same process, no FATAL, no restart"
wait_for 10 '[ "$(q -c "SELECT count(*) FROM capacity_explain_result")" -gt 0 ]'
ok $? "the EXPLAIN checks run after the failing rollover"
! grep -q 'permission denied' "$LOG"; ok $? "no later task runs as the failing table's owner"
age=$(q -c "SELECT extract(epoch FROM now() - max(sampled_at))::int FROM capacity_sample WHERE indicator = 'database_bytes'")
[ "${age:-99}" -le 3 ]; ok $? "sampling goes on (newest sample ${age}s old)"
q >/dev/null <<'SQL'
SELECT format('DROP TABLE %I', 'orders_p' || to_char(now() AT TIME ZONE 'UTC' + interval '1 day', 'YYYYMMDD')) \gexec
SQL
wait_for 10 '[ "$(parts orders)" -ge 4 ]'
ok $? "once the obstacle is gone the worker makes the period by itself"

# --- part B: a long reader on a table that needs a new period ----------------
# (three such tables: sampling must not wait for all of them)
q <<'SQL' >/dev/null
CREATE TABLE other2 (at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE other3 (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('other2', 'at', 'day', premake => 2);
SELECT capacity_manage('other3', 'at', 'day', premake => 2);
SQL
wait_for 10 '[ "$(parts other2)" -ge 4 ] && [ "$(parts other3)" -ge 4 ]'
q -c "SELECT capacity_manage('other', 'at', 'day', premake => 6)" \
  -c "SELECT capacity_manage('other2', 'at', 'day', premake => 6)" \
  -c "SELECT capacity_manage('other3', 'at', 'day', premake => 6)" >/dev/null
n_before=$(parts other)
q -c "BEGIN" -c "SELECT count(*) FROM other, other2, other3" -c "SELECT pg_sleep(14)" -c "COMMIT" >/dev/null &
reader=$!
sleep 1
t0=$(q -c "SELECT now()")
sleep 10
gap=$(q -c "SELECT coalesce(max(d), 99) FROM (SELECT extract(epoch FROM sampled_at - lag(sampled_at) OVER (ORDER BY sampled_at)) AS d
             FROM (SELECT DISTINCT sampled_at FROM capacity_sample WHERE indicator = 'database_bytes' AND sampled_at > '$t0') s) x")
n=$(q -c "SELECT count(DISTINCT sampled_at) FROM capacity_sample WHERE indicator = 'database_bytes' AND sampled_at > '$t0'")
echo "# behind the reader: $n samplings in 10 s, longest gap ${gap}s"
[ "$n" -ge 4 ] && awk "BEGIN { exit !($gap <= 3.5) }"
ok $? "behind a long reader on three tables the worker keeps sampling on time ($n samplings in 10 s, longest gap ${gap}s)"
[ "$(parts other)" = "$n_before" ] && [ "$(q -c "SELECT count(*) FROM capacity_rollover_log WHERE table_name = 'public.other' AND action = 'skipped_locked'")" -ge 1 ]
ok $? "the blocked table is skipped (skipped_locked), not waited for"
[ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND backend_type <> 'matter_capacity'")" = 0 ]
ok $? "no application session waits behind the worker"
wait "$reader"
wait_for 10 '[ "$(parts other)" -gt "$n_before" ]'
ok $? "after the reader ends the worker attaches the periods ($n_before -> $(parts other))"
[ "$(worker_pid)" = "$pid1" ]; ok $? "still the same worker process"

# the worker would otherwise race the manual calls below
q -c "ALTER SYSTEM SET matter_capacity.rollover_interval = 0" -c "SELECT pg_reload_conf()" >/dev/null

# --- case 09: the procedure behind a long reader gives up like the function ---
q <<'SQL' >/dev/null
CREATE TABLE hot (id bigserial, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('hot', 'at', 'day', premake => 1, retention => '1 day', retention_action => 'drop');
SELECT count(*) FROM capacity_rollover('hot', as_of => '2026-06-01 00:00+00');
INSERT INTO hot (at) VALUES ('2026-06-01 10:00+00'), ('2026-06-02 10:00+00');
SQL
q -c "BEGIN" -c "SELECT count(*) FROM hot" -c "SELECT pg_sleep(12)" -c "COMMIT" >/dev/null &
reader=$!
sleep 0.5
start=$(date +%s%N)
q -c "SET statement_timeout = '20s'" -c "CALL capacity_rollover_proc('hot', as_of => '2026-06-03 00:00+00')" >"$W/proc.out" 2>&1
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 6000 ] && grep -q 'skipped_locked' "$W/proc.out" && ! grep -q 'ERROR' "$W/proc.out"
ok $? "CALL capacity_rollover_proc behind a long reader gives up with skipped_locked after the retries (${ms} ms)"

# a cancelled rollover leaves no guard behind, in a session that stays open
q -c "SET matter_capacity.lock_retries = 100" \
  -c "SELECT count(*) FROM capacity_rollover('hot', as_of => '2026-06-03 00:00+00')" \
  -c "SELECT pg_sleep(8)" >"$W/cancelled.out" 2>&1 &
victim=$!
sleep 2
q -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT count(*) FROM capacity_rollover(''hot''%'" >/dev/null
wait "$reader"
sleep 0.5
q -c "SELECT action FROM capacity_rollover('hot', as_of => '2026-06-03 00:00+00')" >"$W/after_cancel.out" 2>&1
grep -q 'canceling statement' "$W/cancelled.out" && ! grep -q skipped_busy "$W/after_cancel.out" && grep -q created "$W/after_cancel.out"
ok $? "a cancelled rollover releases its guard: the next one works while the cancelled session lives ($(tr '\n' ' ' <"$W/after_cancel.out"))"
wait "$victim"

# a session holding the table exclusively (a migration's ALTER TABLE): even
# reading its layout is bounded
q -c "BEGIN" -c "LOCK TABLE hot IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(8)" -c "COMMIT" >/dev/null &
locker=$!
sleep 0.5
start=$(date +%s%N)
q -c "SELECT action FROM capacity_rollover('hot', as_of => '2026-06-05 00:00+00')" >"$W/exclusive.out" 2>&1
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 4000 ] && grep -q skipped_locked "$W/exclusive.out" && ! grep -q ERROR "$W/exclusive.out"
ok $? "a table held exclusively by another session is skipped_locked after the retries (${ms} ms)"
wait "$locker"

# --- security 08: no other role can hold the busy guard -----------------------
q -c "CREATE ROLE outsider LOGIN" >/dev/null
oid=$(q -c "SELECT 'hot'::regclass::oid")
psql -X -q -At -h "$W" -p $P -U outsider -d postgres \
     -c "SELECT pg_advisory_lock(19779, $oid::int), pg_advisory_lock($oid::bigint)" -c "SELECT pg_sleep(6)" >/dev/null 2>&1 &
out=$!
sleep 1
q -c "SELECT action FROM capacity_rollover('hot', as_of => '2026-06-10 00:00+00')" >"$W/outsider.out" 2>&1
grep -q created "$W/outsider.out" && ! grep -q skipped_busy "$W/outsider.out"
ok $? "an unrelated role's advisory locks do not stop the rollover"
wait "$out"
exit 0
