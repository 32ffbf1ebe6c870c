#!/usr/bin/env bash
# A tenant move never runs the table owner's code with the rights of the
# extension owner (a superuser), on either side (review 4b, F1/F1b/F1c/F8):
#  - the start's check for the tenant's rows evaluates the cast to the tenant
#    column's type: a domain CHECK calling the owner's function runs as the
#    owner (and the start is then refused: a publication's row filter cannot
#    use a user-defined type);
#  - cleanup's DELETE fires the owner's BEFORE DELETE trigger here as the
#    owner;
#  - abort's DELETE of the copied rows on the member fires the member table
#    owner's trigger there as that owner (the fleet connection's role is a
#    superuser on the member);
#  - an operator planted in public (oid = regclass) is not called by the
#    start's catalog checks;
#  - a policy the owner FORCEs hides no row from the counts, the tallies or
#    abort's DELETE (they run as the owner, FORCE not applied);
#  - a member without matter_capacity 1.1 (through which the member's rows
#    are read and deleted as their owner) is refused by name.
# Each function records who ran it; it makes its owner a superuser when it
# runs as one.  Two real clusters.  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
S=55497 T=55498
SD=$(cluster_dir tmpriv_src) TD=$(cluster_dir tmpriv_dst)
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
qs() { psql -X -q -At -h "$SD" -p $S -U postgres -d postgres "$@"; }
qt() { psql -X -q -At -h "$TD" -p $T -U postgres -d postgres "$@"; }
cleanup() { cluster_stop tmpriv_src; cluster_stop tmpriv_dst; }
trap cleanup EXIT
cluster_start tmpriv_src $S
cluster_start tmpriv_dst $T

# the same schema on both sides; tp_app owns it, and a log of who ran its code
SCHEMA='
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE ROLE tp_app LOGIN;
CREATE SCHEMA app AUTHORIZATION tp_app;
GRANT EXECUTE ON FUNCTION capacity_manage(regclass,name,text,name,integer,integer,interval,text,boolean),
                          capacity_rollover(regclass,timestamptz,boolean) TO tp_app;
SET ROLE tp_app;
CREATE TABLE app.ran (what text, who name, super boolean);
-- records who runs it; makes tp_app a superuser when a superuser runs it
CREATE FUNCTION app.record(what text) RETURNS boolean LANGUAGE plpgsql AS $f$
DECLARE s boolean := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
BEGIN
  RAISE NOTICE $$% ran as % (superuser %)$$, what, current_user, s;
  IF s THEN EXECUTE $$ALTER ROLE tp_app SUPERUSER$$; END IF;
  IF NOT pg_catalog.current_setting($$transaction_read_only$$)::boolean THEN
    INSERT INTO app.ran VALUES (what, current_user, s);
  END IF;
  RETURN true;
END $f$;
CREATE FUNCTION app.on_delete() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN PERFORM app.record($$delete trigger$$); RETURN OLD; END $f$;
CREATE DOMAIN app.tenant_id AS text CHECK (app.record($$domain check$$));
-- tenant column of the domain
CREATE TABLE app.dv (id bigint, org app.tenant_id NOT NULL, at timestamptz NOT NULL,
                     PRIMARY KEY (id, org, at)) PARTITION BY RANGE (at);
-- plain tenant columns
CREATE TABLE app.ev (id bigint, org text NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (id, org, at)) PARTITION BY RANGE (at);
SELECT capacity_manage($$app.dv$$, $$at$$, $$week$$, $$org$$, 2, premake => 1);
SELECT capacity_manage($$app.ev$$, $$at$$, $$week$$, $$org$$, 2, premake => 1);
SELECT count(*) FROM capacity_rollover($$app.dv$$, $$2026-11-25 00:00+00$$);
SELECT count(*) FROM capacity_rollover($$app.ev$$, $$2026-11-25 00:00+00$$);
RESET ROLE;
'
qs >/dev/null 2>&1 <<SQL
$SCHEMA
SET ROLE tp_app;
INSERT INTO app.dv VALUES (1, 'acme', '2026-11-24 00:00+00');
INSERT INTO app.ev SELECT g, CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'beta' END, '2026-11-24 00:00+00'
  FROM generate_series(1, 10) g;
CREATE TRIGGER on_delete BEFORE DELETE ON app.ev FOR EACH ROW EXECUTE FUNCTION app.on_delete();
DELETE FROM app.ran;
RESET ROLE;
CREATE EXTENSION postgres_fdw;
CREATE SERVER tier1_srv FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$TD', port '$T', dbname 'postgres');
CREATE USER MAPPING FOR postgres SERVER tier1_srv OPTIONS (user 'postgres');
SELECT capacity_fleet_add('tier1', 'tier', 'tier1_srv', '{"tenants": []}');
-- a role with CREATE on public plants oid = regclass (review 4b, F8)
CREATE ROLE tp_planter;
GRANT CREATE ON SCHEMA public TO tp_planter;
SET ROLE tp_planter;
CREATE FUNCTION public.tp_eq(oid, regclass) RETURNS boolean LANGUAGE plpgsql AS \$f\$
BEGIN RAISE NOTICE 'planted oid = regclass ran as %', current_user; RETURN \$1 OPERATOR(pg_catalog.=) \$2::oid; END \$f\$;
CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.tp_eq);
RESET ROLE;
SQL
qt >/dev/null 2>&1 <<SQL
$SCHEMA
SET ROLE tp_app;
CREATE TRIGGER on_delete BEFORE DELETE ON app.ev FOR EACH ROW EXECUTE FUNCTION app.on_delete();
RESET ROLE;
SQL
super() { "$1" -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'tp_app'"; }
# "who superuser" of every recorded run of what (NOTICE lines in $out)
runs() { echo "$out" | sed -n "s/.*NOTICE:  .*$1 ran as \([a-z_]*\) (superuser \([a-z]*\)).*/\1 \2/p" | sort -u | tr '\n' ' '; }
[ "$(super qs)/$(super qt)" = "f/f" ]; ok $? "before: tp_app is no superuser on either side"

# ---- start: the domain CHECK of the tenant column
out=$(qs -v VERBOSITY=verbose -c "SELECT capacity_tenant_move('acme', 'tier1', ARRAY['app.dv'::regclass])" 2>&1)
got=$(runs "domain check")
[ "$got" = "tp_app f " ]; ok $? "start: the domain CHECK on the tenant column runs as the table owner ($got)"
echo "$out" | grep -q 'ERROR:  0A000: the tenant column org of table app.dv has type app.tenant_id' \
  && [ "$(qs -c "SELECT count(*) FROM capacity_tenant_move")/$(qs -c "SELECT count(*) FROM pg_publication")" = 0/0 ]
ok $? "start: a tenant column of a user-defined type is refused (0A000), nothing left ($(echo "$out" | grep ERROR))"
[ "$(super qs)" = f ]; ok $? "start: tp_app did not become a superuser"

# ---- a complete move of acme in app.ev: start (planted operator), verify, freeze, cutover, cleanup
out=$(qs -c "SELECT capacity_tenant_move('acme', 'tier1', ARRAY['app.ev'::regclass])" 2>&1); rc=$?
n=$(echo "$out" | grep -c planted)
[ $rc = 0 ] && [ "$n" = 0 ]; ok $? "start: the planted oid = regclass operator is not called ($n calls)"
v=
for i in $(seq 1 150); do
    v=$(qs -c "SELECT bool_and(equal) FROM capacity_tenant_move_verify('acme')" 2>/dev/null); [ "$v" = t ] && break; sleep 0.2
done
[ "$v" = t ]; ok $? "verify: both sides equal ($v)"
qs -c "SELECT capacity_tenant_move_freeze('acme')" -c "SELECT capacity_tenant_move_cutover('acme')" >/dev/null
ok $? "freeze and cutover"
out=$(qs -c "SELECT capacity_tenant_move_cleanup('acme')" 2>&1)
got=$(runs "delete trigger")
[ "$got" = "tp_app f " ]; ok $? "cleanup: the table's BEFORE DELETE trigger runs as the table owner ($got)"
got=$(qs -c "SELECT string_agg(DISTINCT who || ' ' || super, ',') || ' ' || count(*) FROM app.ran")
[ "$got" = "tp_app false 5" ]; ok $? "cleanup: deleted acme's 5 rows, each as the owner ($got)"
[ "$(super qs)" = f ]; ok $? "cleanup: tp_app did not become a superuser here"

# ---- abort: the member's copy of beta is deleted there as the member table's owner
# and the owner FORCEs a policy hiding every row from itself, on both sides:
# running as the owner must not make the move see (or delete) fewer rows
RLS="SET ROLE tp_app; ALTER TABLE app.ev ENABLE ROW LEVEL SECURITY; ALTER TABLE app.ev FORCE ROW LEVEL SECURITY;
     CREATE POLICY hide_all ON app.ev USING (false)"
qs -c "$RLS" >/dev/null && qt -c "$RLS" >/dev/null; ok $? "tp_app FORCEs a policy hiding every row of app.ev on both sides"
qs -c "SELECT capacity_tenant_move('beta', 'tier1', ARRAY['app.ev'::regclass])" >/dev/null; ok $? "move of beta started"
v=
for i in $(seq 1 150); do
    v=$(qs -c "SELECT bool_and(equal) FROM capacity_tenant_move_verify('beta')" 2>/dev/null); [ "$v" = t ] && break; sleep 0.2
done
[ "$v" = t ] && [ "$(qt -c "SELECT count(*) FROM app.ev WHERE org = 'beta'")" = 5 ]; ok $? "beta copied to the member ($v)"
got=$(qs -c "SELECT source_rows || ' ' || target_rows FROM capacity_tenant_moves WHERE tenant = 'beta'")
[ "$got" = "5 5" ]; ok $? "capacity_tenant_moves counts every row on both sides, the FORCEd policy notwithstanding ($got)"
qt -c "DELETE FROM app.ran" >/dev/null
qs -c "SELECT capacity_tenant_move_abort('beta')" >/dev/null; ok $? "abort of beta"
got=$(qt -c "SELECT coalesce(string_agg(DISTINCT who || ' ' || super, ','), 'none') || ' ' || count(*) FROM app.ran")/$(qt -c "SELECT count(*) FROM app.ev WHERE org = 'beta'")
[ "$got" = "tp_app false 5/0" ]; ok $? "abort: the member table's trigger runs as its owner there (who, rows deleted/left: $got)"
[ "$(super qt)" = f ]; ok $? "abort: tp_app did not become a superuser on the member"
[ "$(qs -c "SELECT count(*) FROM app.ev WHERE org = 'beta'")" = 5 ]; ok $? "abort: beta's rows here untouched"

# ---- a member without matter_capacity 1.1: refused before anything is created on either side
qt -c "DROP EXTENSION matter_capacity CASCADE" >/dev/null 2>&1
out=$(qs -v VERBOSITY=verbose -c "SELECT capacity_tenant_move('beta', 'tier1', ARRAY['app.ev'::regclass])" 2>&1)
got="$(qs -c "SELECT count(*) FROM capacity_tenant_move")/$(qs -c "SELECT count(*) FROM pg_publication")/$(qt -c "SELECT count(*) FROM pg_subscription")"
echo "$out" | grep -q 'ERROR:  55000: fleet member "tier1" has no matter_capacity 1.1' && [ "$got" = "1/0/0" ]
ok $? "start: a member without matter_capacity 1.1 is refused (55000), nothing created (moves/publications/subscriptions: $got)"
got=$(qs -c "SELECT DISTINCT coalesce(target_rows::text, 'null') || ': ' || note FROM capacity_tenant_moves")
[ "$got" = "null: the member has no matter_capacity 1.1: its rows are counted as their owner through it" ]
ok $? "capacity_tenant_moves: no member count without it, the note says why ($got)"
