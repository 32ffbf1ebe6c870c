#!/usr/bin/env bash
# pg_dump of a database that uses every part of the extension, restored with
# pg_restore into a fresh cluster (roles first, with pg_dumpall --globals-only,
# as a DBA would).  Every catalog table pg_dump is told to keep must come back
# row for row (shipped rows the user edited or deleted included), the
# sequences must go on from where they were, and the restored database must
# keep working: same stage verdict and forecasts, rollover and rescue run.
# Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
SRC=55454; DST=55455
W=$(mktemp -d)
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
sq() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir d_source)" -p $SRC -U postgres "$@"; }
dq() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir d_target)" -p $DST -U postgres "$@"; }
trap 'cluster_stop d_source; cluster_stop d_target; rm -rf "$W"' EXIT

cluster_start d_source $SRC
cluster_start d_target $DST

sq -d postgres -c "CREATE ROLE app_owner LOGIN" -c "CREATE DATABASE app OWNER app_owner"
sq -d app >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" (id bigint GENERATED ALWAYS AS IDENTITY, "orgId" text NOT NULL,
                      "createdAt" timestamptz NOT NULL, body text) PARTITION BY RANGE ("createdAt");
CREATE TABLE "AuditEntry" (id bigserial, at timestamptz NOT NULL, what text) PARTITION BY RANGE (at);
ALTER TABLE "Event" OWNER TO app_owner;
ALTER TABLE "AuditEntry" OWNER TO app_owner;
SELECT capacity_manage('"Event"', 'createdAt', 'week', 'orgId', 4, premake => 2,
                       retention => '8 weeks', retention_action => 'detach');
SELECT capacity_manage('"AuditEntry"', 'at', 'day', premake => 3, retention => '30 days', retention_action => 'drop');
SELECT count(*) FROM capacity_rollover(as_of => '2026-11-22 00:00+00');
INSERT INTO "Event" ("orgId", "createdAt", body)
SELECT 'org' || (g % 7), '2026-11-22 00:00+00'::timestamptz + g * interval '1 minute', 'e' || g
  FROM generate_series(1, 5000) g;
-- rows past the premade range wait in the default partition
INSERT INTO "Event" ("orgId", "createdAt", body) VALUES ('org1', '2027-01-05 12:00+00', 'late');
INSERT INTO "AuditEntry" (at, what) SELECT '2026-11-22 00:00+00'::timestamptz + g * interval '1 hour', 'a' || g
  FROM generate_series(0, 60) g;
-- a plain table converted online (the conversion record is kept too)
CREATE TABLE "Webhook" (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL, url text,
                        PRIMARY KEY (id, at));
INSERT INTO "Webhook" (at, url) SELECT '2026-10-01 00:00+00'::timestamptz + g * interval '1 hour', 'https://h/' || g
  FROM generate_series(1, 1000) g;
CALL capacity_convert('"Webhook"', 'at', 'month', premake => 2, as_of => '2026-11-22 00:00+00');
CALL capacity_convert_backfill('"Webhook"');

-- indicators: a probe, a pushed series with 30 days of history, a pool size
SELECT capacity_register_probe('open_orders', 'SELECT 42::float8', 'count');
SELECT capacity_register_push('webhook_p99_ms', 'ms', 'webhook p99');
SELECT capacity_record('webhook_deliveries_per_day', 600000 + d * 10000, '{}', '2026-11-22 00:00+00'::timestamptz - d * interval '1 day')
  FROM generate_series(0, 29) d;
SELECT capacity_record('webhook_p99_ms', 80, '{"endpoint": "acme"}', '2026-11-21 12:00+00');
SELECT pg_stat_force_next_flush();
SELECT capacity_sample_now('2026-11-21 23:00+00');
SELECT capacity_roll_up_days('2026-10-20 00:00+00', '2026-11-23 00:00+00');
SELECT capacity_set_pool_size('app_owner', 40);

-- triggers and settings: one of our own, a shipped one edited, one deleted
INSERT INTO capacity_trigger (name, stage, indicator, aggregate, comparator, threshold, sustain, description)
VALUES ('open_orders_high', NULL, 'open_orders', 'latest', '>', 1000, '0', 'open orders > 1000');
UPDATE capacity_trigger SET threshold = 50e6 WHERE name = 'event_rows';
DELETE FROM capacity_trigger WHERE name = 'sandbox_live_ratio';
UPDATE capacity_stage_def SET runbook = 'https://wiki.example/stage-6' WHERE stage = 6;
SELECT capacity_set_threshold('write_slo_ms', 300);
SELECT capacity_bind_table('Event', '"Event"');

-- declarations, stages and decisions
SELECT capacity_declare('dedicated_infrastructure', 'ACME signed for a dedicated DB');
SELECT capacity_set_stage(3, 'partitioned in October');
SELECT capacity_decide('stay', 'reviewed in the capacity meeting', '2026-11-22 00:00+00');

-- an EXPLAIN-stability check and its result
SELECT capacity_explain_register('event_by_org_day',
       'SELECT count(*) FROM "Event" WHERE "orgId" = ''org1'' AND "createdAt" >= ''2026-11-22'' AND "createdAt" < ''2026-11-23''', 1);
SELECT count(*) FROM capacity_explain_run('2026-11-22 00:00+00');
SQL
ok $? "source database uses partitions, indicators, triggers, declarations, decisions, checks and a conversion"

# canonical content of every table pg_dump keeps, one line per table
snapshot() {
    "$1" -d app -c "SELECT c.relname || ' ' ||
        CASE WHEN c.relkind = 'S' THEN (SELECT coalesce(s.last_value::text, '-') FROM pg_sequences s
                                         WHERE s.schemaname = n.nspname AND s.sequencename = c.relname)
             ELSE (SELECT x FROM capacity_snapshot_rows(c.oid) x) END
      FROM pg_extension e, unnest(e.extconfig) cfg(oid) JOIN pg_class c ON c.oid = cfg.oid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE e.extname = 'matter_capacity' ORDER BY 1"
}
SNAPFN="CREATE OR REPLACE FUNCTION capacity_snapshot_rows(r regclass) RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE x text; BEGIN
  EXECUTE format('SELECT count(*) || '' '' || coalesce(md5(string_agg(t::text, ''|'' ORDER BY t::text)), ''-'') FROM %s t', r) INTO x;
  RETURN x; END \$\$"
sq -d app -c "$SNAPFN"
snapshot sq >"$W/before"
sed 's/^/# /' "$W/before" | cut -c1-100
sq -d app -c "SELECT current_stage, recommended_stage, decision, firing FROM capacity_stage('2026-11-22 00:00+00')" >"$W/stage_before"
sq -d app -c "SELECT trigger_name, labels, status, eta FROM capacity_forecast('2026-11-22 00:00+00') ORDER BY 1, 2::text" >"$W/forecast_before"
sq -d app -c "SELECT count(*), sum(id) FROM \"Event\"" -c "SELECT count(*) FROM \"Webhook\"" -c "SELECT count(*) FROM \"AuditEntry\"" -c "SELECT count(*) FROM capacity_sample" >"$W/rows_before"

ins_before=$(sq -d app -c "SELECT value FROM capacity_latest WHERE indicator = 'table_rows_inserted' AND labels->>'table' = 'public.\"Event\"'")

# dump and restore the way the runbook says
"$PGBIN/pg_dumpall" -h "$(cluster_dir d_source)" -p $SRC -U postgres --globals-only -f "$W/globals.sql"
"$PGBIN/pg_dump" -h "$(cluster_dir d_source)" -p $SRC -U postgres -Fc -d app -f "$W/app.dump" 2>"$W/dump.err"
ok $? "pg_dump -Fc succeeds"
[ ! -s "$W/dump.err" ]; ok $? "pg_dump prints no warning ($(head -c 200 "$W/dump.err"))"
psql -X -q -h "$(cluster_dir d_target)" -p $DST -U postgres -d postgres -f "$W/globals.sql" >/dev/null 2>&1
dq -d postgres -c "CREATE DATABASE app OWNER app_owner"
"$PGBIN/pg_restore" -h "$(cluster_dir d_target)" -p $DST -U postgres -d app --exit-on-error "$W/app.dump" 2>"$W/restore.err"
ok $? "pg_restore --exit-on-error succeeds ($(head -c 300 "$W/restore.err"))"

dq -d app -c "$SNAPFN"
snapshot dq >"$W/after"
diff "$W/before" "$W/after" >"$W/diff"; ok $? "every table pg_dump keeps is restored row for row ($(wc -l <"$W/before") tables and sequences)"
sed 's/^/# /' "$W/diff"
dq -d app -c "SELECT current_stage, recommended_stage, decision, firing FROM capacity_stage('2026-11-22 00:00+00')" >"$W/stage_after"
cmp -s "$W/stage_before" "$W/stage_after"; ok $? "capacity_stage() gives the same verdict after restore ($(cat "$W/stage_after"))"
dq -d app -c "SELECT trigger_name, labels, status, eta FROM capacity_forecast('2026-11-22 00:00+00') ORDER BY 1, 2::text" >"$W/forecast_after"
cmp -s "$W/forecast_before" "$W/forecast_after" && [ -s "$W/forecast_after" ]
ok $? "capacity_forecast() gives the same rows after restore ($(wc -l <"$W/forecast_after") rows)"
dq -d app -c "SELECT count(*), sum(id) FROM \"Event\"" -c "SELECT count(*) FROM \"Webhook\"" -c "SELECT count(*) FROM \"AuditEntry\"" -c "SELECT count(*) FROM capacity_sample" >"$W/rows_after"
cmp -s "$W/rows_before" "$W/rows_after"; ok $? "every application row and raw sample is restored ($(tr '\n' ' ' <"$W/rows_after"))"

r=$(dq -d app -c "SELECT value FROM capacity_latest WHERE indicator = 'webhook_p99_ms' AND labels = '{\"endpoint\": \"acme\"}'")
[ "$r" = 80 ]; ok $? "a pushed indicator's newest value is in capacity_latest after restore (${r:-missing})"

r=$(dq -d app -c "SELECT (SELECT threshold FROM capacity_trigger WHERE name = 'event_rows'),
                         (SELECT count(*) FROM capacity_trigger WHERE name = 'sandbox_live_ratio'),
                         (SELECT count(*) FROM capacity_trigger WHERE name = 'open_orders_high'),
                         (SELECT value FROM capacity_setting WHERE name = 'write_slo_ms'),
                         (SELECT runbook FROM capacity_stage_def WHERE stage = 6)")
[ "$r" = "50000000|0|1|300|https://wiki.example/stage-6" ]
ok $? "edited, deleted and added triggers, settings and stage definitions survive ($r)"

# the restored database keeps working
r=$(dq -d app -c "SELECT capacity_decide('promote', 'after restore', '2026-11-23 00:00+00')" \
              -c "SELECT capacity_declare('soc2_separation_finding', 'after restore')" \
              -c "SELECT capacity_set_stage(4, 'after restore')" \
              -c "SELECT count(*) FROM capacity_decisions" 2>&1 | tail -1)
[ "$r" = 2 ]; ok $? "decisions, declarations and stage changes go on after restore (sequences continued; $r decisions)"
dq -d app -c "SELECT action, count(*) FROM capacity_rollover(as_of => '2027-01-04 00:00+00') GROUP BY 1 ORDER BY 1" >"$W/roll" 2>&1
sed 's/^/# /' "$W/roll"
grep -q '^created|' "$W/roll" && grep -q '^moved_rows|' "$W/roll"
ok $? "rollover keeps working after restore: creates periods and moves the default partition's rows out"
r=$(dq -d app -c "SELECT count(*) FROM \"Event_default\"" -c "SELECT count(*) FROM \"Event\"")
[ "$(echo "$r" | tr '\n' ' ')" = "0 5001 " ]; ok $? "default partition emptied, no Event row lost ($(echo "$r" | tr '\n' ' '))"
r=$(dq -d app -c "SELECT count(*) FROM capacity_rollover_log WHERE as_of = '2027-01-04 00:00+00'" \
              -c "SELECT count(*) FILTER (WHERE passed AND NOT plan_changed) || '/' || count(*) FROM capacity_explain_run('2026-11-22 00:00+00')" 2>&1)
[ "$(echo "$r" | head -1)" -gt 0 ] && [ "$(echo "$r" | tail -1)" = 6/6 ]
ok $? "the rollover log grows and every EXPLAIN check passes with its stored plan unchanged ($(echo "$r" | tr '\n' ' '))"

# the insert counter goes on from its dumped newest value: the restore's
# own inserts and the rescue's move above are not growth
ins_after=$(dq -d app -c "SELECT capacity_sample_now('2027-01-04 01:00+00') > 0" \
                     -c "SELECT value FROM capacity_latest WHERE indicator = 'table_rows_inserted' AND labels->>'table' = 'public.\"Event\"'" | tail -1)
[ -n "$ins_before" ] && [ "$ins_after" = "$ins_before" ]
ok $? "table_rows_inserted goes on from before the dump ($ins_before -> $ins_after)"

# Periods the retention detached are still the policy's own after a restore:
# the history keeps the dumped cluster's OIDs, and a late row of such a
# period used to fail (42P07, "not managed by matter_capacity", the hint
# inviting to drop the archive) instead of getting its "_v2" period, as it
# does before the dump (review 4a F6).
sq -d postgres -c "CREATE DATABASE ret" && dq -d postgres -c "CREATE DATABASE ret"
sq -d ret >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE e (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT capacity_manage('e', 'ts', 'day', premake => 1, retention => '2 days', retention_action => 'detach');
SELECT count(*) FROM capacity_rollover('e', as_of => '2026-11-01 12:00+00');
SELECT count(*) FROM capacity_rollover('e', as_of => '2026-11-05 12:00+00');
SQL
"$PGBIN/pg_dump" -h "$(cluster_dir d_source)" -p $SRC -U postgres -Fc -d ret -f "$W/ret.dump" &&
  "$PGBIN/pg_restore" -h "$(cluster_dir d_target)" -p $DST -U postgres -d ret --exit-on-error "$W/ret.dump"
r=$(dq -d ret -c "SELECT count(*) FROM capacity_manage('e', 'ts', 'day', premake => 1, retention => NULL)" \
              -c "INSERT INTO e VALUES (1, '2026-11-01 08:00+00')" \
              -c "SELECT action || ' ' || partition_name FROM capacity_rollover('e', as_of => '2026-11-05 12:00+00') ORDER BY 1" 2>&1 | tr '\n' ';')
echo "$r" | grep -q 'created e_p20261101_v2' && [ "$(dq -d ret -c "SELECT tableoid::regclass FROM e WHERE id = 1")" = e_p20261101_v2 ]
ok $? "after restore, a late row of a period the retention detached gets its _v2 period ($r)"
