#!/usr/bin/env bash
# A default partition too big for the rescue's period-by-period ATTACH
# (each one scans all of it while writers wait), emptied by the
# conversion's backfill instead (capacity_empty_default):
#   procedure: CALL capacity_rollover_proc() on a table whose default
#     partition holds more than matter_capacity.rescue_backfill_rows rows,
#     while pgbench writes and reads: it reports emptied_default, the
#     default partition becomes the historical partition (one short
#     transaction) and the backfill moves its rows into periods in
#     committed batches; no application transaction waits longer than the
#     lock timeout (plus lock_safety.sh's margin), a monitor sees every old
#     row at every look, no row is lost, the default partition ends empty;
#   refusals: not managed, no primary key, rows before the last partition,
#     published, bad arguments: a clear error and nothing changed; the
#     procedure then moves the rows period by period as before;
#   leftovers: the bound constraint of an interrupted call is removed by
#     every form of the rollover, but not while a call holds the table; a
#     second emptying while the first one's detached table is kept;
#   worker: the same table shape emptied by the background worker alone
#     (the swap, then its backfill slices); rows older than the policy's
#     retention get their periods, which retention retires as it says.
# bench/default_backfill.sh measures the same on 5,000,000 rows.
# Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55467
ROWS=${MC_BACKFILL_ROWS:-300000}
MARGIN_MS=400
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir dbackfill)" -p $PORT -U postgres -d postgres "$@"; }
# the SQLSTATE of a statement expected to fail
state() { psql -X -q -At -v VERBOSITY=sqlstate -h "$(cluster_dir dbackfill)" -p $PORT -U postgres -d postgres "$@" 2>&1 | grep -o 'ERROR:  [0-9A-Z]*' | cut -c9-; }
W=$(mktemp -d)
chmod 777 "$W"
trap 'cluster_stop dbackfill; rm -rf "$W"' EXIT

# the worker is there but idle until part 3 (no rollover, no backfill slices)
cluster_start dbackfill $PORT "shared_preload_libraries = 'matter_capacity'" \
    "matter_capacity.database = 'postgres'" "matter_capacity.rollover_interval = 86400" \
    "matter_capacity.backfill_batches = 0"
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" (id bigint GENERATED ALWAYS AS IDENTITY, "orgId" text NOT NULL,
                      "createdAt" timestamptz NOT NULL DEFAULT now(), body text,
                      PRIMARY KEY (id, "createdAt"))
  PARTITION BY RANGE ("createdAt");
CREATE INDEX ON "Event" ("createdAt");
SELECT capacity_manage('"Event"', 'createdAt', 'day', premake => 1);
-- the last rollover ran three weeks ago
SELECT count(*) FROM capacity_rollover('"Event"', as_of => now() - interval '21 days');
-- since then every row went to the default partition
INSERT INTO "Event" ("orgId", "createdAt", body)
SELECT 'org' || (g % 50), now() - interval '18 days' * (g::float8 / $ROWS), md5(g::text)
  FROM generate_series(1, $ROWS) g;
ANALYZE "Event";
CREATE TABLE app_start AS SELECT clock_timestamp() AS t;
SQL
timeout_ms=$(q -c "SHOW matter_capacity.lock_timeout" | tr -dc 0-9)
before=$(q -c "SELECT count(*) FROM \"Event\"")
in_default=$(q -c "SELECT count(*) FROM ONLY \"Event_default\"")
sum_before=$(q -c "SELECT sum(hashtext(body || id)) FROM \"Event\"")
echo "# $before rows, $in_default in the default partition; lock timeout $timeout_ms ms"

# --- 1. the procedure, under load --------------------------------------------
cat >"$W/app.sql" <<'SQL'
\set org random(1, 50)
INSERT INTO "Event" ("orgId", body) VALUES ('org' || :org, 'x');
SELECT count(*) FROM "Event" WHERE "orgId" = 'org' || :org AND "createdAt" > now() - interval '1 hour';
SQL
(
    cd "$W"; n=0
    while [ ! -f "$W/done" ]; do
        n=$((n + 1))
        "$PGBIN/pgbench" -n -c 2 -T 2 -f app.sql -h "$(cluster_dir dbackfill)" -p $PORT -U postgres postgres \
            --log --log-prefix=pgbench_log_$n >>"$W/pgbench.out" 2>&1
    done
) &
app=$!
sleep 1
(
    while [ ! -f "$W/done" ]; do
        q -c "SELECT (SELECT count(*) FROM \"Event\" WHERE \"createdAt\" < (SELECT t FROM app_start)) || ' ' ||
                     (SELECT count(*) FROM ONLY \"Event_default\")" >>"$W/monitor.out" 2>&1
        sleep "${MC_BACKFILL_MONITOR_PAUSE:-0.05}"
    done
) &
mon=$!
t0=$(date +%s%N)
q -c "CALL capacity_rollover_proc('\"Event\"')" >"$W/proc.out" 2>&1
t1=$(date +%s%N)
touch "$W/done"
wait $mon
wait $app
worst=$(cat "$W"/pgbench_log_* | awk 'BEGIN{m=0} {if ($3>m) m=$3} END{printf "%d", m/1000}')
tx=$(cat "$W"/pgbench_log_* | awk '$4 == 0' | wc -l)
failed=$(cat "$W"/pgbench_log_* | awk '$4 != 0' | wc -l)
slow=$(cat "$W"/pgbench_log_* | awk '{print int($3/1000)}' | sort -n | tail -5 | tr '\n' ' ')
after=$(q -c "SELECT count(*) FROM \"Event\"")
left=$(q -c "SELECT count(*) FROM ONLY \"Event_default\"")
old_seen=$(awk '{print $1}' "$W/monitor.out" | sort -u | tr '\n' ' ')
action=$(q -c "SELECT action || '|' || partition_name || '|' || detail FROM capacity_rollover_log WHERE action = 'emptied_default'")
periods=$(q -c "SELECT count(*) FROM capacity_partition_tree('\"Event\"') WHERE level = 1 AND NOT is_default AND range_to > (SELECT t FROM app_start) - interval '19 days'")
hist=$(q -c "SELECT historical || '|' || state FROM capacity_conversion WHERE table_name = '\"Event\"'::regclass")
hist_rows=$(q -c "SELECT count(*) FROM \"Event_historical\"")
hist_old=$(q -c "SELECT count(*) FROM \"Event_historical\" WHERE \"createdAt\" < (SELECT t FROM app_start)")
attached=$(q -c "SELECT count(*) FROM pg_inherits WHERE inhrelid = '\"Event_historical\"'::regclass")
sum_after=$(q -c "SELECT sum(hashtext(body || id)) FROM \"Event\" WHERE \"createdAt\" < (SELECT t FROM app_start)")
echo "# procedure: $(( (t1 - t0) / 1000000 )) ms; application: $tx transactions, $failed failed, worst $worst ms (slowest five: $slow ms)"
echo "# monitor: $(wc -l <"$W/monitor.out") looks, old rows seen: $old_seen; default partition sizes: $(awk '{print $2}' "$W/monitor.out" | uniq | head -c 200 | tr '\n' ' ')"
echo "# $(echo "$action" | cut -c1-250)"
[ "$failed" = 0 ] && [ "$tx" -gt 10 ]; ok $? "procedure: no application statement failed ($tx transactions)"
[ "$worst" -lt $((timeout_ms + MARGIN_MS)) ]; ok $? "procedure: worst application transaction ${worst} ms < lock timeout ${timeout_ms} ms + ${MARGIN_MS} ms"
[ "$after" = $((before + tx)) ]; ok $? "procedure: no row lost ($before before + $tx inserted = $after after)"
[ "$sum_after" = "$sum_before" ]; ok $? "procedure: the old rows are the same rows (checksum)"
[ "$left" = 0 ]; ok $? "procedure: the default partition is empty ($left rows left)"
[ "$old_seen" = "$in_default " ]; ok $? "procedure: every look saw all $in_default old rows (seen: $old_seen)"
echo "$action" | grep -q "^emptied_default|Event_default|$hist_rows rows: it became the historical partition \"Event_historical\" (the swap held its lock [0-9.]* ms); the backfill moved them into periods"; ok $? "procedure: reports emptied_default with the rows and the historical partition"
[ "$hist" = '"Event_historical"|done' ] && [ "$attached" = 0 ] && [ "$hist_old" = "$in_default" ]; ok $? "procedure: the historical partition is backfilled and detached, its $in_default old rows kept until dropped ($hist, $hist_old old rows)"
[ "$periods" -ge 19 ]; ok $? "procedure: the rows are in day periods ($periods periods)"
grep -q "moved_rows Event_p" "$W/proc.out"; [ $? != 0 ]; ok $? "procedure: no period was rescued by the scan-per-ATTACH path"

# --- 2. refusals: clear errors, nothing changed; the rollover falls back ---
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE nopk (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT capacity_manage('nopk', 'ts', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('nopk', as_of => now() - interval '10 days');
INSERT INTO nopk SELECT g, now() - interval '5 days' * (g::float8 / 3000) FROM generate_series(1, 3000) g;
CREATE TABLE stray (id bigint, ts timestamptz NOT NULL, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts);
SELECT capacity_manage('stray', 'ts', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('stray', as_of => now() - interval '10 days');
INSERT INTO stray SELECT g, now() - interval '5 days' * (g::float8 / 3000) FROM generate_series(1, 3000) g;
INSERT INTO stray VALUES (0, now() - interval '40 days');
CREATE TABLE plain (id bigint PRIMARY KEY);
SQL
catalog() { q -c "SELECT string_agg(c.relname || ':' || c.relispartition, ',' ORDER BY c.relname) FROM pg_class c WHERE c.relname ~ '^(nopk|stray)' AND c.relkind IN ('r','p')
                  UNION ALL SELECT count(*)::text FROM capacity_conversion
                  UNION ALL SELECT count(*)::text FROM pg_constraint WHERE conname LIKE '%default_bound'"; }
cat0=$(catalog)
[ "$(state -c "CALL capacity_empty_default('plain')")" = 42704 ]; ok $? "refused: a table that is not managed (42704)"
[ "$(state -c "CALL capacity_empty_default('nopk')")" = 0A000 ]; ok $? "refused: a table without a primary key (0A000)"
[ "$(state -c "CALL capacity_empty_default('stray')")" = 55000 ]; ok $? "refused: a row before the last partition (55000)"
[ "$(state -c "CALL capacity_empty_default(NULL)")" = 22004 ]; ok $? "refused: NULL (22004)"
[ "$(state -c "CALL capacity_empty_default('stray', batch_rows => 0)")" = 22023 ]; ok $? "refused: batch_rows 0 (22023)"
[ "$(state -c "BEGIN" -c "CALL capacity_empty_default('nopk')")" = 25001 ]; ok $? "refused: inside a transaction block (25001)"
msg=$(psql -X -q -At -h "$(cluster_dir dbackfill)" -p $PORT -U postgres -d postgres -c "CALL capacity_empty_default('stray')" 2>&1)
echo "$msg" | grep -q 'rows of the default partition public.stray_default have no ts or one before' && echo "$msg" | grep -q 'HINT:  Only a default partition whose rows all come after the last partition'
ok $? "refused: the message names the default partition and the hint says what to do"
[ "$(catalog)" = "$cat0" ]; ok $? "refused: nothing changed"
out=$(q -c "SET matter_capacity.rescue_backfill_rows = 1000" -c "CALL capacity_rollover_proc('nopk')" -c "CALL capacity_rollover_proc('stray')" 2>&1)
[ "$(q -c "SELECT count(*) FROM ONLY nopk_default")" = 0 ] && [ "$(q -c "SELECT count(*) FROM ONLY stray_default")" = 0 ] &&
    [ "$(q -c "SELECT count(*) FROM nopk") $(q -c "SELECT count(*) FROM stray")" = "3000 3001" ] &&
    ! echo "$out" | grep -q emptied_default && echo "$out" | grep -q 'moved_rows nopk_p'
ok $? "refused: the procedure moved those rows period by period instead (the stray row too: no retention)"

# an interrupted call (cancelled, killed, or unable to undo it) leaves its
# bound constraint, which refuses rows the default partition takes: every
# form of the rollover removes it, but not while a call holds the table
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE lefto (id bigint, ts timestamptz NOT NULL, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts);
SELECT capacity_manage('lefto', 'ts', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('lefto', as_of => now() - interval '10 days');
INSERT INTO lefto SELECT g, now() - interval '5 days' * (g::float8 / 3000) FROM generate_series(1, 3000) g;
SQL
last=$(q -c "SELECT max(range_to) FROM capacity_partition_tree('lefto') WHERE NOT is_default")
q -c "ALTER TABLE lefto_default ADD CONSTRAINT lefto_default_bound CHECK (ts IS NOT NULL AND ts >= '$last') NOT VALID"
# a constraint of the DBA's that only has the name is theirs: it stays
q -c "SELECT count(*) FROM capacity_rollover('lefto')" >/dev/null
[ "$(q -c "SELECT count(*) FROM pg_constraint WHERE conname = 'lefto_default_bound'")" = 1 ]; ok $? "leftover: a constraint of that name without our comment is the DBA's and stays"
# (what an interrupted call leaves: the constraint with its comment)
q -c "COMMENT ON CONSTRAINT lefto_default_bound ON lefto_default IS 'matter_capacity: capacity_empty_default''s bound, removed once the default partition is the historical partition'"
[ "$(state -c "INSERT INTO lefto VALUES (-1, now() - interval '30 days')")" = 23514 ]; ok $? "leftover: the constraint an interrupted call left refuses a row older than the last partition (23514)"
# a call under way holds the table's claim: its constraint stays
q -c "SELECT pg_advisory_lock(1835230000, 'lefto'::regclass::oid::bigint::int), pg_sleep(4)" >/dev/null &
holder=$!
sleep 1
out1=$(q -c "SELECT action FROM capacity_rollover('lefto')")
wait $holder
out2=$(q -c "SELECT action || ' ' || coalesce(partition_name, '') FROM capacity_rollover('lefto')")
! echo "$out1" | grep -q dropped_bound && echo "$out2" | grep -q '^dropped_bound lefto_default' &&
    [ "$(q -c "SELECT count(*) FROM pg_constraint WHERE conname = 'lefto_default_bound'")" = 0 ] &&
    q -c "INSERT INTO lefto VALUES (-1, now() - interval '30 days')" && [ "$(q -c "SELECT count(*) FROM lefto")" = 3001 ]
ok $? "leftover: capacity_rollover() removes it once no call holds the table (dropped_bound), and the row goes in"

# a second emptying while the first one's detached table (and its indexes) is kept
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE tw (id bigint, ts timestamptz NOT NULL, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts);
SELECT capacity_manage('tw', 'ts', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('tw', as_of => now() - interval '30 days');
INSERT INTO tw SELECT g, now() - interval '28 days' + interval '1 day' * (g::float8 / 2000) FROM generate_series(1, 2000) g;
CALL capacity_empty_default('tw');
INSERT INTO tw SELECT g, now() + interval '3 days' + interval '5 days' * ((g - 100000)::float8 / 1000) FROM generate_series(100001, 101000) g;
CALL capacity_empty_default('tw', as_of => now() + interval '10 days');
SQL
[ "$(q -c "SELECT count(*) FROM ONLY tw_default") $(q -c "SELECT count(*) FROM tw") $(q -c "SELECT count(*) FROM tw_historical2")" = "0 3000 1000" ] &&
    [ "$(q -c "SELECT count(*) FROM pg_class WHERE relname = 'tw_default_pkey_historical2'")" = 1 ]
ok $? "again: a second emptying takes tw_historical2 (its indexes _historical2), no row lost"

# the conversion's row is written in the swap's transaction under the lock
# timeout: a session holding capacity_conversion makes the swap fail cleanly
# (undone, the bound removed, the claim released) instead of keeping the
# table locked while it waits
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE lk (id bigint, ts timestamptz NOT NULL, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts);
SELECT capacity_manage('lk', 'ts', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('lk', as_of => now() - interval '10 days');
INSERT INTO lk SELECT g, now() - interval '5 days' * (g::float8 / 3000) FROM generate_series(1, 3000) g;
SQL
q -c "BEGIN" -c "LOCK TABLE capacity_conversion IN SHARE MODE" -c "SELECT pg_sleep(6)" -c "COMMIT" >/dev/null &
holder=$!
sleep 0.5
st=$(state -c "CALL capacity_empty_default('lk', max_batches => 0)")
wait $holder
[ "$st" = 55P03 ] && [ "$(q -c "SELECT count(*) FROM pg_constraint WHERE conname = 'lk_default_bound'")" = 0 ] &&
    [ "$(q -c "SELECT partdefid::regclass FROM pg_partitioned_table WHERE partrelid = 'lk'::regclass")" = lk_default ] &&
    [ "$(q -c "SELECT count(*) FROM ONLY lk_default")" = 3000 ] &&
    [ "$(q -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1835230000")" = 0 ]
ok $? "swap: a lock on capacity_conversion makes it fail cleanly (55P03; bound removed, claim released, nothing moved)"

# a published table is refused: the copies would reach subscribers twice
q -c "CREATE PUBLICATION pub_stray FOR TABLE stray WITH (publish_via_partition_root = true)" >/dev/null
[ "$(state -c "CALL capacity_empty_default('stray')")" = 0A000 ]; ok $? "refused: a published table (0A000)"

# --- 3. the worker alone -------------------------------------------------------
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE "Audit" (id bigint, "at" timestamptz NOT NULL, PRIMARY KEY (id, "at")) PARTITION BY RANGE ("at");
SELECT capacity_manage('"Audit"', 'at', 'day', premake => 1, retention => '3 days');
SELECT count(*) FROM capacity_rollover('"Audit"', as_of => now() - interval '10 days');
INSERT INTO "Audit" SELECT g, now() - interval '7 days' * (g::float8 / 150000) FROM generate_series(1, 150000) g;
ALTER SYSTEM SET matter_capacity.rollover_interval = 1;
ALTER SYSTEM SET matter_capacity.sample_interval = 1;
ALTER SYSTEM SET matter_capacity.backfill_batches = 5;
SELECT pg_reload_conf();
SQL
for i in $(seq 1 120); do
    st=$(q -c "SELECT state FROM capacity_conversion WHERE table_name = '\"Audit\"'::regclass")
    [ "$st" = done ] && break
    sleep 1
done
wl=$(q -c "SELECT count(*) FROM ONLY \"Audit_default\"")
# rows older than the retention got periods too, which retention retired as the policy says (detach)
for j in $(seq 1 20); do
    wold=$(q -c "SELECT count(*) FROM \"Audit\" WHERE \"at\" < capacity_period_start(now() - interval '3 days', 'day')")
    [ "$wold" = 0 ] && break
    sleep 0.5
done
wdet=$(q -c "SELECT coalesce(sum((xpath('//n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I', partition_name), false, false, '')))[1]::text::bigint), 0)
               FROM capacity_rollover_log WHERE action = 'detached' AND table_name = 'public.\"Audit\"'")
wa=$(q -c "SELECT count(*) FROM \"Audit\"")
wlog=$(q -c "SELECT count(*) FROM capacity_rollover_log WHERE action = 'emptied_default' AND table_name = 'public.\"Audit\"'")
echo "# worker: conversion state $st after ${i} s; $wa rows, $wl in the default partition, $wdet in detached periods; $wlog emptied_default logged"
[ "$st" = done ] && [ "$wl" = 0 ] && [ "$wlog" = 1 ] && [ $((wa + wdet)) = 150000 ]; ok $? "worker: emptied the default partition by the backfill on its own, no row lost ($wa in the table + $wdet detached)"
[ "$wold" = 0 ] && [ "$wdet" -gt 0 ]; ok $? "worker: rows older than the retention got their periods, which retention detached as the policy says"
