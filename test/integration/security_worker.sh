#!/usr/bin/env bash
# Issue 19 on a real server with the worker preloaded: what other roles can
# do to the worker (a superuser), to the loopback, to a conversion run by a
# superuser, and to the split runbook (cases in ../shared/cases/security).
# Every check but the preconditions ("the worker sampled ...", "17: and the
# retention was detached ...", "05: and every row ...") fails on the code
# before the fix.  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
P=55447
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
H=$(cluster_dir security)
q() { psql -X -q -At -h "$H" -p $P -d postgres "$@"; }    # q [-U role] ...
wait_for() {  # wait_for SECONDS 'CONDITION'
    local t=$1 cond=$2
    for _ in $(seq 1 $((t * 4))); do eval "$cond" >/dev/null 2>&1 && return 0; sleep 0.25; done
    return 1
}
trap 'kill $(jobs -p) 2>/dev/null; cluster_stop security' EXIT

cluster_start security $P "shared_preload_libraries = 'matter_capacity'" \
    "matter_capacity.database = 'postgres'" "matter_capacity.sample_interval = 1" \
    "matter_capacity.rollover_interval = 0" "matter_capacity.explain_interval = 1" \
    "matter_capacity.probe_timeout = 300" "log_connections = on" "log_min_messages = warning"
LOG=$H/server.log

# the roles of 00-setup.sql
q -U postgres >/dev/null 2>&1 <<'SQL'
CREATE EXTENSION matter_capacity;
CREATE ROLE app_owner LOGIN;
CREATE ROLE app_user LOGIN;
CREATE ROLE outsider LOGIN;
CREATE SCHEMA app AUTHORIZATION app_owner;
GRANT USAGE ON SCHEMA app TO app_user;
GRANT EXECUTE ON FUNCTION capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean),
                          capacity_rollover(regclass, timestamptz, boolean),
                          capacity_set_hash_partitions(regclass, integer, timestamptz),
                          capacity_register_probe(text, text, text),
                          capacity_explain_register(text, text, integer, text[])
   TO app_owner;
GRANT EXECUTE ON PROCEDURE capacity_rollover_proc(regclass, timestamptz, boolean) TO app_owner;
CREATE TABLE app.evidence (who name, superuser boolean, via text);
GRANT INSERT ON app.evidence TO PUBLIC;
SQL
super() { q -U postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = '$1'"; }
evidence_super() { q -U postgres -c "SELECT count(*) FROM app.evidence WHERE superuser"; }
sampled() { q -U postgres -c "SELECT count(DISTINCT sampled_at) FROM capacity_sample WHERE indicator = 'database_bytes'"; }

# ---- 02 and 03: settings made by a probe, a check, a table owner's RLS policy
q -U app_owner >/dev/null 2>&1 <<'SQL'
CREATE FUNCTION app.hook(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO app.evidence SELECT current_user, r.rolsuper, 'app.='
      FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
        EXECUTE 'ALTER ROLE app_owner SUPERUSER';
    END IF;
    RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE OPERATOR app.= (LEFTARG = text, RIGHTARG = text, FUNCTION = app.hook);
CREATE FUNCTION app.le_hook(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO app.evidence SELECT current_user, r.rolsuper, 'app.<='
      FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
        EXECUTE 'ALTER ROLE app_owner SUPERUSER';
    END IF;
    RETURN a OPERATOR(pg_catalog.<=) b;
END $$;
CREATE OPERATOR app.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = app.le_hook);
CREATE FUNCTION app.leak() RETURNS integer IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'app, pg_catalog', false);
    RETURN 1;
END $$;
SELECT capacity_register_probe('aaa_probe',
    $$SELECT pg_catalog.length(pg_catalog.set_config('search_path', 'app, pg_catalog', false))$$, 'n');
SELECT capacity_explain_register('aaa check', 'SELECT 1', 0);
SQL
q -U app_owner -c "SELECT capacity_explain_register('aaa check', 'SELECT app.leak()', 0)" >/dev/null 2>&1
q -U app_owner -c "CREATE TABLE app.ledger (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at)" >/dev/null
q -U postgres -c "SELECT capacity_manage('app.ledger', 'at', 'day', premake => 1)" >/dev/null
q -U app_owner -c "ALTER TABLE app.ledger ENABLE ROW LEVEL SECURITY" -c "ALTER TABLE app.ledger FORCE ROW LEVEL SECURITY" \
    -c "CREATE POLICY everything ON app.ledger USING (app.leak() = 1)" >/dev/null
n0=$(sampled)
wait_for 15 '[ "$(sampled)" -ge $((n0 + 4)) ] && [ "$(q -U postgres -c "SELECT count(*) FROM capacity_explain_result WHERE name = '\''aaa check'\''")" -ge 3 ]'
ok $? "the worker sampled the leaking probe and ran the leaking checks several times"
[ "$(super app_owner)" = f ] && [ "$(evidence_super)" = 0 ]
ok $? "02/03: nothing of app_owner ran as the worker (superuser: $(super app_owner), superuser evidence: $(evidence_super))"

# ---- 06: a probe that swallows its cancel; 07: a check whose planning sleeps
q -U app_owner >/dev/null 2>&1 <<'SQL'
CREATE FUNCTION app.stubborn() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    WHILE clock_timestamp() < t0 + interval '30 seconds' LOOP
        BEGIN
            PERFORM pg_sleep(0.1);
        EXCEPTION WHEN query_canceled THEN
            NULL;
        END;
    END LOOP;
    RETURN 1;
END $$;
CREATE FUNCTION app.slow_const() RETURNS integer IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(30);
    RETURN 1;
END $$;
SELECT capacity_register_probe('stubborn_probe', 'SELECT app.stubborn()', 'n');
SQL
q -U app_owner -c "CREATE TABLE app.armed (on_ boolean)" -c "INSERT INTO app.armed VALUES (false)" \
  -c "CREATE OR REPLACE FUNCTION app.maybe_slow() RETURNS integer IMMUTABLE LANGUAGE plpgsql AS \$\$ BEGIN IF (SELECT a.on_ FROM app.armed a) THEN PERFORM pg_sleep(30); END IF; RETURN 1; END \$\$" \
  -c "GRANT SELECT ON app.armed TO PUBLIC" -c "SELECT capacity_explain_register('slow check', 'SELECT app.maybe_slow()', 0)" \
  -c "UPDATE app.armed SET on_ = true" >/dev/null
n0=$(sampled)
t0=$(date +%s)
wait_for 20 '[ "$(sampled)" -ge $((n0 + 5)) ]'
ok $? "06/07: the worker keeps sampling every second with a stubborn probe and a sleeping check ($(( $(date +%s) - t0 )) s for 5 rounds)"
r=$(q -U postgres -c "SELECT last_error FROM capacity_indicator_run WHERE indicator = 'stubborn_probe'")
[[ "$r" == *"timed out after 300 ms"* ]]; ok $? "06: the stubborn probe is recorded as timed out ($r)"
r=$(q -U postgres -c "SELECT error FROM capacity_explain_result WHERE name = 'slow check' ORDER BY id DESC LIMIT 1")
[[ "$r" == *"timed out"* ]]; ok $? "07: the sleeping check is recorded as timed out ($r)"
q -U app_owner -c "SET lock_timeout = '3s'" -c "ALTER TABLE app.ledger ADD COLUMN note text" >/dev/null 2>&1
ok $? "07: a migration on a checked table is not blocked by locks the worker's checks keep"
q -U postgres -c "DELETE FROM capacity_indicator WHERE name = 'stubborn_probe'" -c "DELETE FROM capacity_explain_check WHERE name = 'slow check'" >/dev/null

# ---- 10: another session's temp table with a default partition
psql -X -q -h "$H" -p $P -d postgres -U outsider -c "CREATE TEMP TABLE t (ts timestamptz) PARTITION BY RANGE (ts)" \
    -c "CREATE TEMP TABLE t_d PARTITION OF t DEFAULT" -c "INSERT INTO t VALUES (now())" -c "SELECT pg_sleep(4)" >/dev/null 2>&1 &
sleep 1
q -U postgres -c "SELECT capacity_sample_now()" >/dev/null 2>&1
r=$(q -U postgres -c "SELECT coalesce(last_error, '') || ' ' || (last_ok = last_run) FROM capacity_indicator_run WHERE indicator = 'default_partition_rows'")
[ "$r" = " true" ]; ok $? "10: default_partition_rows is sampled while another session has a temp table with a default partition ($r)"
wait

# ---- 09: another session's temp table with a default partition, locked
psql -X -q -h "$H" -p $P -d postgres -U outsider -c "CREATE TEMP TABLE t (ts timestamptz) PARTITION BY RANGE (ts)" \
    -c "CREATE TEMP TABLE t_d PARTITION OF t DEFAULT" -c "INSERT INTO t VALUES (now())" \
    -c "BEGIN; LOCK TABLE t_d IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(20); COMMIT;" >/dev/null 2>&1 &
sleep 1
t0=$(date +%s%N)
r=$(q -U postgres -c "SET statement_timeout = '8s'" -c "SELECT capacity_sample_now() > 0")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$r" = t ] && [ $ms -lt 4000 ]; ok $? "09: capacity_sample_now() returns at once despite an outsider's locked temp table ($ms ms)"
n0=$(sampled)
wait_for 10 '[ "$(sampled)" -ge $((n0 + 3)) ]'
ok $? "09: the worker keeps sampling meanwhile"
[ -z "$(q -U postgres -c "SELECT 1 FROM pg_stat_activity WHERE backend_type = 'matter_capacity' AND wait_event_type = 'Lock'")" ]
ok $? "09: the worker is not waiting on a lock"

# ---- 16: the loopback setting is for superusers only
q -U postgres -c "ALTER SYSTEM SET matter_capacity.loopback_conninfo = 'password=not-a-real-secret'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
r=$(q -U outsider -c "SELECT current_setting('matter_capacity.loopback_conninfo')" 2>&1)
[[ "$r" != *secret* ]] && [[ "$r" == *ERROR* ]]; ok $? "16: an outsider cannot read matter_capacity.loopback_conninfo ($r)"
r=$(q -U outsider -c "SELECT count(*) FROM pg_settings WHERE name = 'matter_capacity.loopback_conninfo' AND setting LIKE '%secret%'")
[ "$r" = 0 ]; ok $? "16: nor through pg_settings"
q -U postgres -c "ALTER SYSTEM RESET matter_capacity.loopback_conninfo" -c "SELECT pg_reload_conf()" >/dev/null

# ---- 16c/17: the loopback acts as the caller, whatever the conninfo or database name
q -U postgres -c "CREATE DATABASE \"shop user=\"" >/dev/null
psql -X -q -h "$H" -p $P -U postgres -d "dbname='shop user='" >/dev/null 2>&1 <<'SQL'
CREATE EXTENSION matter_capacity;
CREATE ROLE app_owner2 LOGIN;
CREATE SCHEMA s AUTHORIZATION app_owner2;
GRANT EXECUTE ON FUNCTION capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean),
                          capacity_rollover(regclass, timestamptz, boolean) TO app_owner2;
GRANT EXECUTE ON PROCEDURE capacity_rollover_proc(regclass, timestamptz, boolean) TO app_owner2;
SQL
q -U postgres -c "ALTER ROLE app_owner2 SET matter_capacity.loopback_conninfo = 'host=$H port=$P user=postgres dbname=postgres'" >/dev/null
psql -X -q -h "$H" -p $P -U app_owner2 -d "dbname='shop user='" >/dev/null 2>&1 <<'SQL'
CREATE TABLE s.t (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('s.t', 'at', 'day', premake => 1, retention => '2 days', default_partition => false);
SELECT count(*) FROM capacity_rollover('s.t', '2027-06-01');
CALL capacity_rollover_proc('s.t', '2027-06-05');
SQL
sleep 0.5
n=$(grep 'application_name=matter_capacity loopback' "$LOG" | grep -c 'user=app_owner2 database=shop user=')
bad=$(grep 'application_name=matter_capacity loopback' "$LOG" | grep 'database=shop user=' | grep -vc 'user=app_owner2 ')
[ "$n" -ge 1 ] && [ "$bad" = 0 ]
ok $? "16/17: in a database named 'shop user=', with user=postgres in the conninfo, the loopback connects as the caller ($n connections, $bad as another role)"
detached=$(psql -X -q -At -h "$H" -p $P -U postgres -d "dbname='shop user='" -c "SELECT count(*) FROM capacity_rollover_log WHERE detail LIKE '%CONCURRENTLY%'")
[ "$detached" -ge 1 ]; ok $? "17: and the retention was detached concurrently through it ($detached)"

# ---- 05: a conversion run by a superuser; the owner's trigger on the staging table
q -U app_owner >/dev/null <<'SQL'
CREATE TABLE app.orders (id bigint NOT NULL, created_at timestamptz NOT NULL, note text, PRIMARY KEY (id, created_at));
INSERT INTO app.orders SELECT g, now() - interval '40 days' + g * interval '1 hour', 'old' FROM generate_series(1, 200) g;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.orders TO app_user;
SQL
q -U postgres -c "ALTER SYSTEM SET matter_capacity.backfill_batches = 0" -c "SELECT pg_reload_conf()" >/dev/null
q -U postgres -c "SET matter_capacity.lock_timeout = 1000" -c "CALL capacity_convert('app.orders', 'created_at', 'month')" \
  -c "CALL capacity_convert_backfill('app.orders', 10, max_batches => 1)" >/dev/null 2>&1
q -U app_owner >/dev/null 2>&1 <<'SQL'
CREATE FUNCTION app.on_copy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO app.evidence SELECT current_user, r.rolsuper, 'staging trigger ' || TG_OP
      FROM pg_catalog.pg_roles r WHERE r.rolname = current_user;
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
        EXECUTE 'ALTER ROLE app_owner SUPERUSER';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER on_copy BEFORE INSERT ON app.orders_backfill FOR EACH ROW EXECUTE FUNCTION app.on_copy();
SQL
q -U app_user -c "UPDATE app.orders SET note = 'touched' WHERE id = 150" >/dev/null
q -U postgres -c "ALTER SYSTEM RESET matter_capacity.backfill_batches" -c "SELECT pg_reload_conf()" >/dev/null
wait_for 30 '[ "$(q -U postgres -c "SELECT state FROM capacity_conversions WHERE table_name = '\''app.orders'\''::regclass")" = done ]'
ok $? "05: the worker finishes the backfill through its loopback"
fired=$(q -U postgres -c "SELECT count(*) FROM app.evidence WHERE via LIKE 'staging trigger%'")
[ "$fired" -gt 1 ] && [ "$(super app_owner)" = f ] && [ "$(q -U postgres -c "SELECT count(*) FROM app.evidence WHERE via LIKE 'staging trigger%' AND superuser")" = 0 ]
ok $? "05: the owner's trigger on the staging table fired $fired times (replayed write, batches, switch), never as a superuser"
[ "$(q -U postgres -c "SELECT count(*) || '/' || count(*) FILTER (WHERE note = 'touched') FROM app.orders")" = 200/1 ]
ok $? "05: and every row (with the replayed update) is in the converted table"

# ---- 27: the split drops no period holding a committed row
q -U app_owner -c "CREATE TABLE app.\"Event\" (id bigint GENERATED ALWAYS AS IDENTITY, \"orgId\" text NOT NULL, \"createdAt\" timestamptz NOT NULL, PRIMARY KEY (id, \"createdAt\", \"orgId\")) PARTITION BY RANGE (\"createdAt\")" \
  -c "GRANT SELECT, INSERT ON app.\"Event\" TO app_user" \
  -c "SELECT capacity_manage('app.\"Event\"', 'createdAt', 'week', 'orgId', 4, premake => 3)" \
  -c "SELECT count(*) FROM capacity_rollover('app.\"Event\"', now())" >/dev/null
{
    echo "BEGIN ISOLATION LEVEL REPEATABLE READ;"
    echo "SELECT count(*) FROM app.\"Event\";"
    echo "SELECT pg_sleep(2);"
    echo "SELECT capacity_set_hash_partitions('app.\"Event\"', 8);"
    echo "COMMIT;"
} | q -U app_owner >/dev/null 2>&1 &
rr=$!
sleep 1
q -U app_user -c "INSERT INTO app.\"Event\" (\"orgId\", \"createdAt\") VALUES ('acme', now() + interval '14 days')" >/dev/null
wait $rr
q -U app_user -c "INSERT INTO app.\"Event\" (\"orgId\", \"createdAt\") VALUES ('bob', now() + interval '21 days')" >/dev/null
p21=$(q -U postgres -c "SELECT capacity_partition_name('Event', 'week', now() + interval '21 days')")
q -U app_owner -c "ALTER TABLE app.\"$p21\" ENABLE ROW LEVEL SECURITY" -c "ALTER TABLE app.\"$p21\" FORCE ROW LEVEL SECURITY" \
  -c "CREATE POLICY only_mine ON app.\"$p21\" USING (\"orgId\" = current_user)" \
  -c "SELECT capacity_set_hash_partitions('app.\"Event\"', 16)" >/dev/null 2>&1
r=$(q -U postgres -c "SELECT string_agg(\"orgId\", ',' ORDER BY \"orgId\") FROM app.\"Event\"")
[ "$r" = acme,bob ]; ok $? "27: rows committed after a REPEATABLE READ snapshot, or hidden from the owner by RLS, survive the split ($r)"

# ---- review 4, F2/F3: look-alikes in the extension's schema and the worker's calls
# A role with CREATE on public (where the README installs the extension)
# plants a backfill procedure taking text and a zero-argument EXPLAIN run.
# The worker called the backfill with the table as an untyped literal (the
# text look-alike matched better and ran as the worker's superuser) and the
# EXPLAIN run with no argument (ambiguous: every round failed).
q -U postgres >/dev/null 2>&1 <<'SQL'
CREATE ROLE lk_planter LOGIN;
GRANT CREATE ON SCHEMA public TO lk_planter;
CREATE SEQUENCE public.lk_worker_ran;
GRANT USAGE ON SEQUENCE public.lk_worker_ran TO lk_planter;
CREATE TABLE app.conv (id bigint, at timestamptz NOT NULL, PRIMARY KEY (id, at));
INSERT INTO app.conv SELECT g, now() - g * interval '1 hour' FROM generate_series(1, 500) g;
SQL
q -U lk_planter >/dev/null 2>&1 <<'SQL'
CREATE PROCEDURE public.capacity_convert_backfill(tbl text, batch_rows integer DEFAULT 10000, max_batches integer DEFAULT NULL)
LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM nextval('public.lk_worker_ran');
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN EXECUTE 'ALTER ROLE lk_planter SUPERUSER'; END IF;
END $f$;
CREATE FUNCTION public.capacity_explain_run() RETURNS SETOF record LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM nextval('public.lk_worker_ran');
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN EXECUTE 'ALTER ROLE lk_planter SUPERUSER'; END IF;
END $f$;
SQL
lines=$(wc -l < "$LOG")
q -U postgres -c "CALL capacity_convert('app.conv'::regclass, 'at'::name, 'day'::text)" >/dev/null 2>&1
wait_for 60 '[ "$(q -U postgres -c "SELECT state FROM capacity_conversion WHERE table_name = '"'"'app.conv'"'"'::regclass")" = done ]'
ok $? "F2: the worker backfilled the converted table ($(q -U postgres -c "SELECT state FROM capacity_conversion WHERE table_name = 'app.conv'::regclass"))"
# two EXPLAIN rounds (explain_interval = 1 s) after the planting
sleep 2.5
lk_ran=$(q -U postgres -c "SELECT coalesce((SELECT last_value FROM public.lk_worker_ran WHERE is_called), 0)")
[ "$lk_ran" = 0 ] && [ "$(super lk_planter)" = f ]
ok $? "F2: the worker called neither look-alike (ran: $lk_ran); lk_planter is no superuser"
! tail -n +"$lines" "$LOG" | grep -q 'is not unique'
ok $? "F3: the worker's EXPLAIN rounds are not made ambiguous by a zero-argument look-alike"

# the worker stayed up and no one became a superuser
[ "$(super app_owner)" = f ] && [ "$(evidence_super)" = 0 ] && ! grep -q 'terminated by signal' "$LOG"
ok $? "no role became a superuser; no backend crashed"
