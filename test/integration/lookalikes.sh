#!/usr/bin/env bash
# Look-alikes planted in the extension's schema are never called (review F7),
# where the pgTAP test cannot look: the extension installed in public as the
# README does, a role with CREATE on public (the application's owner) plants
# test/plant_lookalikes.sql; then, each in its own transaction, a pg_monitor
# role renders the review and reads a plan's stage (breaker2's three
# repros), and a superuser converts a table and backfills it (CALLs that
# commit, so not inside a pgTAP transaction).  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55481
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir lookalikes)" -p $PORT -U postgres -d lk "$@"; }
trap 'cluster_stop lookalikes' EXIT

cluster_start lookalikes $PORT
psql -X -q -h "$(cluster_dir lookalikes)" -p $PORT -U postgres -d postgres -c "CREATE DATABASE lk"
q <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
SELECT capacity_plan_install('tiers-abc'), capacity_plan_install('evidence-gates');
CREATE ROLE appowner LOGIN;
GRANT CREATE ON SCHEMA public TO appowner;
CREATE ROLE watcher LOGIN IN ROLE pg_monitor;
CREATE SEQUENCE public.mc_lookalike_ran;
GRANT USAGE ON SEQUENCE public.mc_lookalike_ran TO appowner;
-- a plain table of the application, four weeks of rows, to convert
CREATE TABLE public.ev (id bigint, at timestamptz NOT NULL, PRIMARY KEY (id, at));
ALTER TABLE public.ev OWNER TO appowner;
INSERT INTO public.ev SELECT g, now() - g * interval '10 minutes' FROM generate_series(1, 4000) g;
SQL
q -c "SET ROLE appowner" -f "$(dirname "$0")/../plant_lookalikes.sql" 2>&1 | grep -v '^$'
n=$(q -c "SELECT count(*) FROM pg_proc WHERE proowner = 'appowner'::regrole")
[ "$n" -ge 200 ]; ok $? "appowner planted $n look-alikes in public"

ran() { q -c "SELECT coalesce((SELECT last_value FROM public.mc_lookalike_ran WHERE is_called), 0)"; }
q -c "SET ROLE watcher" -c "SELECT length(capacity_report_html()) > 0" >/dev/null 2>&1; r=$?
ok $r "a pg_monitor role renders capacity_report_html() (look-alikes run so far: $(ran))"
q -c "SET ROLE watcher" -c "SELECT count(*) FROM capacity_stage(plan => 'tiers-abc'::text)" \
  -c "SELECT count(*) FROM capacity_stage(plan => 'evidence-gates'::text)" >/dev/null 2>&1; r=$?
ok $r "a pg_monitor role reads the stage of tiers-abc and evidence-gates (look-alikes run so far: $(ran))"
q -c "SELECT count(*) FROM capacity_explain_run()" >/dev/null 2>&1; r=$?
ok $r "the DBA runs the EXPLAIN checks (look-alikes run so far: $(ran))"
q -c "CALL capacity_convert('public.ev'::regclass, 'at'::name, 'week'::text)" >/dev/null 2>&1; r=$?
ok $r "the DBA converts appowner's table (look-alikes run so far: $(ran))"
q -c "CALL capacity_convert_backfill('public.ev'::regclass, 1000)" >/dev/null 2>&1; r=$?
ok $r "and backfills it (look-alikes run so far: $(ran))"
[ "$(q -c "SELECT state FROM capacity_conversion WHERE table_name = 'public.ev'::regclass")" = done ]
ok $? "the conversion is done"
q -c "SELECT count(*) FROM capacity_rollover('public.ev'::regclass)" -c "SELECT capacity_sample_now()" >/dev/null 2>&1; r=$?
ok $r "the DBA rolls the table over and samples (look-alikes run so far: $(ran))"
q -c "SELECT capacity_register_push('lk_push'::text, 'ms'::text)" \
  -c "SELECT capacity_record('lk_push'::text, 5::float8, '{\"r\": \"x\"}'::jsonb, now() - interval '3 hours')" \
  -c "SELECT capacity_decide('stay'::text, 'reviewed'::text)" \
  -c "SELECT capacity_plan_import(jsonb_set(capacity_plan_export('tiers-abc'::text), '{name}', '\"lk-copy\"'::jsonb))" \
  -c "SELECT count(*) FROM capacity_report(now(), interval '6 months', 'lk-copy'::text)" >/dev/null 2>&1; r=$?
ok $r "push, decide, plan export/import and the text review (look-alikes run so far: $(ran))"
q -c "SET ROLE watcher" -c "SELECT count(*) FROM capacity_fleet" -c "SELECT count(*) FROM capacity_tenant_moves" >/dev/null 2>&1; r=$?
ok $r "a pg_monitor role reads capacity_fleet and capacity_tenant_moves, no member registered (look-alikes run so far: $(ran))"
[ "$(ran)" = 0 ]; ok $? "no look-alike ran"
[ "$(q -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'appowner'")" = f ]; ok $? "appowner is no superuser"

# --- operators planted before CREATE EXTENSION and ALTER EXTENSION UPDATE --
# Both scripts run as a superuser with the extension's schema on the path:
# an operator of an exact argument match planted there was bound into two
# views (oid = regclass) and run by the upgrade's statements (float8 >
# integer) as that superuser (review 4, F7/F8). The scripts now pin
# search_path to pg_catalog. Each planted operator answers as pg_catalog's
# would and counts its calls; none may run, not at install or update, not
# when a superuser then reads every view.
plant_operators() {   # $1 database
    psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir lookalikes)" -p $PORT -U postgres -d "$1" <<'SQL'
SET client_min_messages = warning;
DO $$ BEGIN CREATE ROLE op_planter; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT CREATE ON SCHEMA public TO op_planter;
CREATE SEQUENCE public.mc_operator_ran;
GRANT USAGE ON SEQUENCE public.mc_operator_ran TO op_planter;
SET ROLE op_planter;
DO $plant$
DECLARE
    pair text[];
    op text;
    fn text;
    n int := 0;
BEGIN
    FOREACH pair SLICE 1 IN ARRAY ARRAY[
        ['float8', 'integer', 'float8'], ['integer', 'float8', 'float8'], ['oid', 'regclass', 'oid'],
        ['regclass', 'oid', 'oid'], ['numeric', 'integer', 'numeric'], ['integer', 'numeric', 'numeric'],
        ['float8', 'numeric', 'float8'], ['numeric', 'float8', 'float8'], ['bigint', 'numeric', 'numeric'],
        ['float4', 'integer', 'float8'], ['timestamptz', 'date', 'timestamptz'], ['date', 'timestamptz', 'timestamptz'],
        ['text', 'varchar', 'text'], ['jsonb', 'json', 'jsonb'], ['oid', 'regnamespace', 'oid']]
    LOOP
        FOREACH op IN ARRAY ARRAY['=', '<>', '<', '>', '<=', '>=']
        LOOP
            n := n + 1;
            fn := format('mc_op_%s', n);
            EXECUTE format('CREATE FUNCTION public.%I(a %s, b %s) RETURNS boolean LANGUAGE plpgsql AS %L',
                           fn, pair[1], pair[2],
                           format('BEGIN PERFORM nextval(''public.mc_operator_ran''); RETURN a::%s %s b::%s; END',
                                  pair[3], op, pair[3]));
            EXECUTE format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.%I)',
                           op, pair[1], pair[2], fn);
        END LOOP;
    END LOOP;
END $plant$;
SQL
}
op_ran() { psql -X -q -At -h "$(cluster_dir lookalikes)" -p $PORT -U postgres -d "$1" -c "SELECT coalesce((SELECT last_value FROM public.mc_operator_ran WHERE is_called), 0)"; }
read_views() {   # $1 database: a superuser reads every view of the extension
    psql -X -q -At -h "$(cluster_dir lookalikes)" -p $PORT -U postgres -d "$1" -c "SELECT string_agg(format('SELECT count(*) FROM %s', c.oid::regclass), ' UNION ALL ') FROM pg_class c JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass::oid AND d.deptype = 'e' WHERE c.relkind = 'v' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'matter_capacity')" |
        psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir lookalikes)" -p $PORT -U postgres -d "$1" >/dev/null
}
psql -X -q -h "$(cluster_dir lookalikes)" -p $PORT -U postgres -d postgres -c "CREATE DATABASE lk_install" -c "CREATE DATABASE lk_update"
plant_operators lk_install
# a managed table, so that the views have rows to compare
psql -X -q -v ON_ERROR_STOP=1 -h "$(cluster_dir lookalikes)" -p $PORT -U postgres -d lk_install >/dev/null <<'SQL' && read_views lk_install; r=$?
CREATE EXTENSION matter_capacity;
CREATE TABLE public.pt (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('public.pt'::regclass, 'at'::name, 'day'::text);
SELECT count(*) FROM capacity_rollover('public.pt'::regclass, '2026-11-01 00:00+00'::timestamptz);
SQL
[ $r = 0 ] && [ "$(op_ran lk_install)" = 0 ]
ok $? "operators planted before CREATE EXTENSION: not bound into a view nor run by the install (ran: $(op_ran lk_install))"
plant_operators lk_update
psql -X -q -v ON_ERROR_STOP=1 -h "$(cluster_dir lookalikes)" -p $PORT -U postgres -d lk_update >/dev/null <<'SQL'
CREATE EXTENSION matter_capacity VERSION '1.0';
-- history the update's statements go through (a counter that fell)
INSERT INTO capacity_sample (indicator, labels, sampled_at, value)
SELECT 'table_rows_inserted', '{"table": "public.t"}', now() - g * interval '1 hour', 100 - g FROM generate_series(1, 3) g;
INSERT INTO capacity_sample (indicator, labels, sampled_at, value)
VALUES ('table_rows_inserted', '{"table": "public.t"}', now() - interval '30 min', 5);
ALTER EXTENSION matter_capacity UPDATE TO '1.1';
SQL
r=$?; read_views lk_update; r2=$?
[ $r = 0 ] && [ $r2 = 0 ] && [ "$(op_ran lk_update)" = 0 ]
ok $? "operators planted before 1.0 and ALTER EXTENSION UPDATE: the views are bound again to pg_catalog's, the update runs none (ran: $(op_ran lk_update))"
[ "$(q -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'op_planter'")" = f ]; ok $? "op_planter is no superuser"
