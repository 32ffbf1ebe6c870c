#!/usr/bin/env bash
# Upgrades, not reinstalls: version 1.0 is installed at users' sites.
#
#  1. a database at 1.0 (CREATE EXTENSION ... VERSION '1.0', the script as
#     released) is updated with ALTER EXTENSION matter_capacity UPDATE and
#     compared with a fresh install of the current version: every member
#     object with its definition and grants (pg_dump --binary-upgrade
#     --schema-only dumps extension members one by one), the extension's
#     config-dump registrations, and the shipped rows of its catalog tables;
#  2. a 1.0 database in use (policies, partitions, samples, decisions) keeps
#     working after the update: the same rows are there, and rollover,
#     sampling and capacity_stage() run on it.
# Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55457
W=$(mktemp -d); chmod 755 "$W"
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir upgrade)" -p $PORT -U postgres "$@"; }
trap 'cluster_stop upgrade; rm -rf "$W"' EXIT

cluster_start upgrade $PORT
q -d postgres -c "CREATE DATABASE fresh" -c "CREATE DATABASE updated" -c "CREATE DATABASE used" \
  -c "CREATE ROLE app_owner"
q -d used -c "GRANT CREATE ON SCHEMA public TO app_owner"
cur=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$MC_ROOT/matter_capacity.control")

q -d fresh -c "SET client_min_messages = warning" -c "CREATE EXTENSION matter_capacity"
q -d updated -c "SET client_min_messages = warning" -c "CREATE EXTENSION matter_capacity VERSION '1.0'"
q -d updated -c "SET client_min_messages = warning" -c "ALTER EXTENSION matter_capacity UPDATE"
v=$(q -d updated -c "SELECT extversion FROM pg_extension WHERE extname = 'matter_capacity'")
[ "$v" = "$cur" ]; ok $? "ALTER EXTENSION UPDATE reaches $cur from 1.0 (got $v)"

# Members: the dump of each, minus the oid-preserving calls binary-upgrade
# mode adds (they differ between any two databases).
members() {
    "$PGBIN/pg_dump" -h "$(cluster_dir upgrade)" -p $PORT -U postgres -d "$1" \
        --schema-only --binary-upgrade --no-comments 2>&1 \
      | grep -vE 'binary_upgrade_set_next|binary_upgrade_set_record_init_privs|^-- (Name|Dependencies)|^SET |^SELECT pg_catalog.set_config|relfrozenxid|relminmxid|datfrozenxid|^--$|^$' \
      | grep -vE "^\\\\(un)?restrict |^WHERE oid = '[0-9]+';$" \
      | sed -E -e "s/(Dumped (from|by) .*)//" -e "s/'\{[0-9,]+\}'/'{oids}'/" \
      | perl -pe 'if (/binary_upgrade_create_empty_extension/) { s/\x27\{("[^}]*)\}\x27/"\x27{" . join(",", sort split(m{,}, $1)) . "}\x27"/e }'
}
# (The extension's config-dump conditions are listed in registration order,
# which differs between an update, where 1.1's tables come last, and a fresh
# install, where they come in file order: sorted here; the registrations
# themselves are compared table by table below.)
members fresh >"$W/fresh.dump"; members updated >"$W/updated.dump"
if diff -u "$W/fresh.dump" "$W/updated.dump" >"$W/objects.diff"; then r=0; else r=1; head -n 80 "$W/objects.diff" | sed 's/^/# /'; fi
n=$(grep -c 'ALTER EXTENSION matter_capacity ADD' "$W/fresh.dump")
[ "$n" -gt 50 ] || r=1
ok $r "updated 1.0 and fresh $cur have the same member objects, definitions and grants ($n members)"

# COMMENT ON is compared on its own (pg_dump --no-comments above keeps the
# object diff readable).
comments() {
    q -d "$1" -c "SELECT pg_describe_object(d.classid, d.objid, d.objsubid) || ' = ' || coalesce(obj_description(d.objid, c.relname), '')
                    FROM pg_depend d JOIN pg_class c ON c.oid = d.classid
                   WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
                     AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'matter_capacity')
                   ORDER BY 1"
}
comments fresh >"$W/fresh.comments"; comments updated >"$W/updated.comments"
diff -u "$W/fresh.comments" "$W/updated.comments" | head -n 40 | sed 's/^/# /'
cmp -s "$W/fresh.comments" "$W/updated.comments"; ok $? "the same comments on every member"

# Config-dump registrations and shipped rows.  Timestamps of install time
# are left out: they differ by the seconds between the two installs.
config() {
    q -d "$1" <<'SQL'
SELECT e.extconfig[i]::regclass::text || ' ' || coalesce(e.extcondition[i], '')
  FROM pg_extension e, generate_subscripts(e.extconfig, 1) i
 WHERE e.extname = 'matter_capacity' ORDER BY 1;
DO $$
DECLARE t regclass; cols text; n bigint;
BEGIN
  FOR t IN SELECT c FROM pg_extension e, unnest(e.extconfig) c
            WHERE e.extname = 'matter_capacity' ORDER BY c::text LOOP
    IF (SELECT relkind FROM pg_class WHERE oid = t) <> 'r' THEN CONTINUE; END IF;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
      FROM pg_attribute WHERE attrelid = t AND attnum > 0 AND NOT attisdropped
       AND atttypid NOT IN ('timestamptz'::regtype, 'timestamp'::regtype);
    FOR cols IN EXECUTE format('SELECT %s::text FROM (SELECT %s FROM %s) r ORDER BY 1',
                               'to_jsonb(r)', cols, t) LOOP
      RAISE NOTICE '% %', t, cols;
    END LOOP;
  END LOOP;
END $$;
SQL
}
config fresh >"$W/fresh.config" 2>&1; config updated >"$W/updated.config" 2>&1
diff -u "$W/fresh.config" "$W/updated.config" | head -n 40 | sed 's/^/# /'
cmp -s "$W/fresh.config" "$W/updated.config" && [ "$(grep -c NOTICE "$W/fresh.config")" -gt 10 ]
ok $? "the same config-dump registrations and shipped catalog rows ($(grep -c NOTICE "$W/fresh.config") rows)"

# A 1.0 database in use, updated in place.
q -d used >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity VERSION '1.0';
CREATE TABLE "Event" (id bigint GENERATED ALWAYS AS IDENTITY, "orgId" text NOT NULL,
                      "createdAt" timestamptz NOT NULL, body text) PARTITION BY RANGE ("createdAt");
ALTER TABLE "Event" OWNER TO app_owner;
SELECT capacity_manage('"Event"', 'createdAt', 'week', 'orgId', 4, premake => 2, retention => '4 weeks');
SELECT count(*) FROM capacity_rollover(as_of => '2026-11-22 00:00+00');
INSERT INTO "Event" ("orgId", "createdAt", body)
SELECT 'org' || (g % 7), '2026-11-16 00:00+00'::timestamptz + g * interval '1 minute', 'e' || g
  FROM generate_series(1, 3000) g;
SELECT capacity_record('webhook_deliveries_per_day', 600000 + d * 10000, '{}', '2026-11-22 00:00+00'::timestamptz - d * interval '1 day')
  FROM generate_series(0, 29) d;
SELECT capacity_sample_now('2026-11-21 23:00+00');
SELECT capacity_declare('eu_residency_customer', 'signed ACME GmbH');
SELECT capacity_decide('stay', 'reviewed before the update');
SQL
before=$(q -d used -c "SELECT (SELECT count(*) FROM \"Event\") || '/' || (SELECT count(*) FROM capacity_policies)
                               || '/' || (SELECT count(*) FROM capacity_decisions) || '/' || (SELECT count(*) FROM capacity_partitions)")
q -d used -c "SET client_min_messages = warning" -c "ALTER EXTENSION matter_capacity UPDATE"
after=$(q -d used -c "SELECT (SELECT count(*) FROM \"Event\") || '/' || (SELECT count(*) FROM capacity_policies)
                              || '/' || (SELECT count(*) FROM capacity_decisions) || '/' || (SELECT count(*) FROM capacity_partitions)")
[ "$before" = "$after" ]; ok $? "rows, policies, decisions and partitions survive the update ($before -> $after)"
out=$(q -d used 2>&1 <<'SQL'
SET client_min_messages = warning;
SELECT 'rolled ' || count(*) FROM capacity_rollover(as_of => '2026-12-01 00:00+00') WHERE action = 'created';
SELECT 'sampled ' || (capacity_sample_now('2026-11-21 23:30+00') > 0);
SELECT 'stage ' || current_stage || ' ' || decision FROM capacity_stage(as_of => '2026-11-22 00:00+00');
SQL
)
echo "$out" | sed 's/^/# /'
echo "$out" | grep -qx 'rolled 2' && echo "$out" | grep -qx 'sampled true' && echo "$out" | grep -q '^stage 1 '
ok $? "after the update the 1.0 database rolls over, samples and evaluates its stage"

# The insert counter a 1.0 sampler wrote fell when a partition left the
# table; the update takes the falls out of the history, and the sampler
# goes on from the newest value, counting only new rows.
q -d postgres -c "CREATE DATABASE hist"
q -d hist >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity VERSION '1.0';
CREATE TABLE ev (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('ev', 'at', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover(as_of => '2026-11-20 00:00+00');
INSERT INTO ev SELECT '2026-11-20 01:00+00' FROM generate_series(1, 100);
SELECT pg_stat_force_next_flush();
SELECT capacity_sample_now('2026-11-20 02:00+00');
INSERT INTO ev SELECT '2026-11-21 01:00+00' FROM generate_series(1, 50);
SELECT pg_stat_force_next_flush();
SELECT capacity_sample_now('2026-11-21 02:00+00');
ALTER TABLE ev DETACH PARTITION ev_p20261120;
SELECT capacity_sample_now('2026-11-21 03:00+00');
SQL
series() { q -d hist -c "SELECT string_agg(value::text, ' ' ORDER BY sampled_at) FROM capacity_sample WHERE indicator = 'table_rows_inserted'"; }
before=$(series)
q -d hist -c "SET client_min_messages = warning" -c "ALTER EXTENSION matter_capacity UPDATE"
q -d hist >/dev/null <<'SQL'
SELECT capacity_sample_now('2026-11-21 04:00+00');
INSERT INTO ev SELECT '2026-11-21 05:00+00' FROM generate_series(1, 10);
SELECT pg_stat_force_next_flush();
SELECT capacity_sample_now('2026-11-21 06:00+00');
SQL
after=$(series)
latest=$(q -d hist -c "SELECT value FROM capacity_latest WHERE indicator = 'table_rows_inserted'")
[ "$before" = "100 150 50" ] && [ "$after" = "100 150 150 150 160" ] && [ "$latest" = 160 ]
ok $? "the update takes retention's falls out of a 1.0 insert counter, and sampling goes on from it (1.0: $before; updated: $after)"
