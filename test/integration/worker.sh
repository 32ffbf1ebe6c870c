#!/usr/bin/env bash
# The background worker on real servers: a primary with
# shared_preload_libraries = 'matter_capacity', a streaming standby made with
# pg_basebackup, and a logical slot nobody consumes.  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
P=55441; S=55442
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
pq() { psql -X -q -At -h "$(cluster_dir w_primary)" -p $P -U postgres -d postgres "$@"; }
sq() { psql -X -q -At -h "$(cluster_dir w_standby)" -p $S -U postgres -d postgres "$@"; }
wait_for() {  # wait_for SECONDS 'CONDITION': until the shell condition holds (re-evaluated each time)
    local t=$1 cond=$2
    for _ in $(seq 1 $((t * 4))); do eval "$cond" >/dev/null 2>&1 && return 0; sleep 0.25; done
    return 1
}
worker_pid() { pq -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'matter_capacity'"; }
trap 'cluster_stop w_standby; cluster_stop w_primary' EXIT

cluster_start w_primary $P "shared_preload_libraries = 'matter_capacity'" \
    "matter_capacity.database = 'postgres'" "matter_capacity.sample_interval = 1" \
    "matter_capacity.rollover_interval = 2" "log_min_messages = log"
LOG=$(cluster_dir w_primary)/server.log

wait_for 10 '[ -n "$(worker_pid)" ]'; ok $? "worker runs, shown as backend_type matter_capacity"
pid1=$(worker_pid)
sleep 2
[ "$(worker_pid)" = "$pid1" ] && ! grep -q 'ERROR' "$LOG"
ok $? "without the extension installed it waits quietly (no error, same process)"

pq -c "CREATE EXTENSION matter_capacity" \
   -c "CREATE TABLE w_event (org int NOT NULL, t timestamptz NOT NULL) PARTITION BY RANGE (t)" \
   -c "SELECT capacity_manage('w_event', 't', 'day', premake => 2)" >/dev/null
wait_for 15 '[ "$(pq -c "SELECT count(*) FROM capacity_partitions WHERE table_name = '\''w_event'\''::regclass")" -ge 4 ]'
ok $? "the worker rolls a managed table over on its own"
wait_for 10 '[ "$(pq -c "SELECT count(DISTINCT sampled_at) FROM capacity_sample WHERE indicator = '\''database_bytes'\''")" -ge 2 ]'
ok $? "the worker samples every sample_interval"

# a converted table: the worker runs its backfill to the end on its own
pq <<'SQL' >/dev/null 2>&1
CREATE TABLE w_conv (id bigint GENERATED ALWAYS AS IDENTITY, t timestamptz NOT NULL, PRIMARY KEY (id, t));
INSERT INTO w_conv (t) SELECT now() - g * interval '1 minute' - interval '1 minute' FROM generate_series(1, 30000) g;
CALL capacity_convert('w_conv', 't', 'day', premake => 2);
SQL
wait_for 30 '[ "$(pq -c "SELECT state FROM capacity_conversions WHERE table_name = '\''w_conv'\''::regclass")" = done ]'
ok $? "the worker runs a conversion backfill to the end ($(pq -c "SELECT count(*) FROM w_conv") rows, $(pq -c "SELECT count(*) FROM capacity_partitions WHERE table_name = 'w_conv'::regclass AND level = 1") partitions)"
# the rows were written once: the backfill's copies are not growth
sleep 3
n=$(pq -c "SELECT value FROM capacity_latest WHERE indicator = 'table_rows_inserted' AND labels->>'table' = 'public.w_conv'")
[ "$n" = 30000 ]; ok $? "its copies are not growth: table_rows_inserted stays at the 30000 rows written (${n:-none})"

# an error in one task does not stop the worker
pq -c "SELECT capacity_register_probe('always_fails', 'SELECT 1 / (SELECT count(*) - count(*) FROM w_event)')" >/dev/null
before=$(pq -c "SELECT count(*) FROM capacity_sample WHERE indicator = 'database_bytes'")
wait_for 10 '[ "$(pq -c "SELECT count(*) FROM capacity_sample WHERE indicator = '\''database_bytes'\''")" -gt "$before" ]'
[ $? = 0 ] && [ "$(worker_pid)" = "$pid1" ] && [ -n "$(pq -c "SELECT last_error FROM capacity_indicator_status WHERE indicator = 'always_fails'")" ]
ok $? "a failing probe is recorded; sampling goes on in the same worker"
pq -c "DELETE FROM capacity_indicator WHERE name = 'always_fails'" >/dev/null

# SIGHUP: a long interval after reload stops the once-a-second sampling
pq -c "ALTER SYSTEM SET matter_capacity.sample_interval = 3600" -c "SELECT pg_reload_conf()" >/dev/null
sleep 2
n1=$(pq -c "SELECT count(DISTINCT sampled_at) FROM capacity_sample WHERE indicator = 'database_bytes'")
sleep 3
n2=$(pq -c "SELECT count(DISTINCT sampled_at) FROM capacity_sample WHERE indicator = 'database_bytes'")
[ "$n1" = "$n2" ] && [ "$(worker_pid)" = "$pid1" ]; ok $? "SIGHUP reloads the interval without a restart ($n1 -> $n2 samplings in 3 s)"
pq -c "ALTER SYSTEM SET matter_capacity.sample_interval = 1" -c "SELECT pg_reload_conf()" >/dev/null

# standby: replica lag on the primary, nothing written on the standby
SDIR=$(cluster_dir w_standby)
cluster_stop w_standby; rm -rf "$SDIR"; mkdir -p "$SDIR"; chown "$MC_OSUSER" "$SDIR"
as_server_user "$PGBIN/pg_basebackup" -h "$(cluster_dir w_primary)" -p $P -U postgres -D "$SDIR/data" -R -X stream -c fast >/dev/null 2>&1
sed -i "s/^port = .*/port = $S/; s|^unix_socket_directories = .*|unix_socket_directories = '$SDIR'|" "$SDIR/data/postgresql.conf"
echo "primary_conninfo = 'host=$(cluster_dir w_primary) port=$P user=postgres application_name=w_standby'" >> "$SDIR/data/postgresql.auto.conf"
as_server_user "$PGBIN/pg_ctl" -D "$SDIR/data" -l "$SDIR/server.log" -w start >/dev/null
wait_for 20 '[ "$(sq -c "SELECT pg_is_in_recovery()")" = t ]'; ok $? "streaming standby made with pg_basebackup is up"
wait_for 15 '[ -n "$(pq -c "SELECT value FROM capacity_latest WHERE indicator = '\''replica_lag_seconds'\'' AND labels->>'\''application_name'\'' = '\''w_standby'\''")" ]'
ok $? "replica lag of the standby is recorded on the primary ($(pq -c "SELECT value FROM capacity_latest WHERE indicator = 'replica_lag_seconds'") s)"
sleep 2
[ -z "$(sq -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'matter_capacity'")" ]
ok $? "no worker runs on the hot standby"
sq -c "SELECT capacity_sample_now()" >/dev/null 2>"$SDIR/err.txt"
grep -q 'recovery' "$SDIR/err.txt"; ok $? "sampling on the standby is refused with an error naming recovery"
for call in "SELECT * FROM capacity_rollover()" "CALL capacity_rollover_proc()" \
            "SELECT capacity_manage('w_event', 't', 'day', premake => 3)" \
            "SELECT capacity_set_hash_partitions('w_event', 4)"; do
    sq -c "$call" >/dev/null 2>"$SDIR/err.txt"
    grep -q 'in recovery' "$SDIR/err.txt"; ok $? "on the standby, refused naming recovery: $call"
done
# the SQL-language writers refuse alike: 25006 naming recovery, with a hint,
# before any write is tried (not PostgreSQL's generic read-only error)
for call in "SELECT capacity_record('webhook_p99_ms', 1)" "SELECT capacity_register_push('w_push')" \
            "SELECT capacity_declare('eu_residency_customer', 'signed')" "SELECT capacity_decide('stay', 'note')" \
            "SELECT capacity_set_stage(2, 'note')" "SELECT capacity_set_threshold('write_slo_ms', 300)" \
            "SELECT * FROM capacity_explain_run()"; do
    sq -v VERBOSITY=verbose -c "$call" >/dev/null 2>"$SDIR/err.txt"
    grep -q '^ERROR:  25006: matter_capacity: cannot .* while the server is in recovery' "$SDIR/err.txt" && grep -q '^HINT:  Run it on the primary' "$SDIR/err.txt"
    ok $? "on the standby, refused with 25006 naming recovery and a hint: $call"
done
views=$(sq -c "SELECT count(*) > 0 FROM capacity_latest" 2>/dev/null)
[ "$views" = t ]; ok $? "views answer on the standby"
evals=$(sq -c "SELECT (SELECT count(*) FROM capacity_forecast()) > 0 AND (SELECT decision FROM capacity_stage()) IS NOT NULL
                   AND (SELECT count(*) FROM capacity_report()) > 0 AND (SELECT count(*) FROM capacity_sample_daily) > 0" 2>/dev/null)
[ "$evals" = t ]; ok $? "capacity_stage(), capacity_forecast() and capacity_report() answer on the standby from replicated rollups"

# a logical slot nobody consumes: its lag grows
pq -c "SELECT pg_create_logical_replication_slot('w_slot', 'test_decoding')" >/dev/null
sleep 1.5
lag1=$(pq -c "SELECT value FROM capacity_latest WHERE indicator = 'replication_slot_lag_bytes' AND labels->>'slot' = 'w_slot'")
pq -c "INSERT INTO w_event SELECT g, now() FROM generate_series(1, 20000) g" >/dev/null
sleep 2.5
lag2=$(pq -c "SELECT value FROM capacity_latest WHERE indicator = 'replication_slot_lag_bytes' AND labels->>'slot' = 'w_slot'")
awk -v a="${lag1:-0}" -v b="${lag2:-0}" 'BEGIN { exit !(b > a && b > 100000) }'
ok $? "logical slot lag grows while nobody consumes it (${lag1:-none} -> ${lag2:-none} bytes)"
pq -c "SELECT pg_drop_replication_slot('w_slot')" >/dev/null

# promotion: the worker starts on the new primary and writes there
as_server_user "$PGBIN/pg_ctl" -D "$SDIR/data" -w promote >/dev/null
wait_for 20 '[ -n "$(sq -c "SELECT pid FROM pg_stat_activity WHERE backend_type = '\''matter_capacity'\''")" ]'
ok $? "after promotion the worker starts on the new primary"
before=$(sq -c "SELECT count(*) FROM capacity_sample")
wait_for 15 '[ "$(sq -c "SELECT count(*) FROM capacity_sample")" -gt "$before" ]'
ok $? "and samples there"

# SIGTERM: exits promptly; the postmaster starts it again
pq -c "SELECT pg_terminate_backend($pid1)" >/dev/null
wait_for 2 '[ -z "$(worker_pid)" ]'; ok $? "SIGTERM ends the worker promptly"
wait_for 20 '[ -n "$(worker_pid)" ]'; ok $? "the postmaster starts it again"
pid2=$(worker_pid)
# crash: kill -9 makes the postmaster reinitialise; the worker comes back
kill -9 "$pid2"
wait_for 30 '[ -n "$(worker_pid)" ]'
[ $? = 0 ] && [ "$(worker_pid)" != "$pid2" ]; ok $? "after kill -9 the worker is restarted"
! grep -q 'terminated by signal 11' "$LOG"; ok $? "no segfault in the server log"
