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
