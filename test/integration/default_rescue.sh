#!/usr/bin/env bash
# A large default partition, left by a scheduler that was down for weeks,
# emptied while the application writes and reads:
#   procedure form: CALL capacity_rollover_proc() commits one period at a
#     time (the current one first); a monitor session sees the old rows all
#     the time (never out of sight) and the default partition shrink in
#     several committed steps; no application statement waits longer than
#     the lock timeout (the allowed lock-bound check, with the margin
#     lock_safety.sh uses); no row is lost (counts before/after).
#   function form: with matter_capacity.rescue_rows_per_call small, each
#     call moves whole periods up to that many rows and reports in a
#     'deferred' row how many rows of how many periods it left; the rows
#     left are exactly that many; calls until none is left empty it.
# bench/default_rescue.sh measures the same on 5,000,000 rows.
# Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55465
ROWS=${MC_RESCUE_ROWS:-60000}
MARGIN_MS=400
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir rescue)" -p $PORT -U postgres -d postgres "$@"; }
W=$(mktemp -d)
chmod 777 "$W"
trap 'cluster_stop rescue; rm -rf "$W"' EXIT

cluster_start rescue $PORT
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" (id bigint GENERATED ALWAYS AS IDENTITY, "orgId" text NOT NULL,
                      "createdAt" timestamptz NOT NULL DEFAULT now(), body text)
  PARTITION BY RANGE ("createdAt");
CREATE INDEX ON "Event" ("createdAt");
SELECT capacity_manage('"Event"', 'createdAt', 'day', premake => 1);
-- the last rollover ran three weeks ago
SELECT count(*) FROM capacity_rollover('"Event"', as_of => now() - interval '21 days');
-- since then every row went to the default partition
INSERT INTO "Event" ("orgId", "createdAt", body)
SELECT 'org' || (g % 50), now() - interval '18 days' * (g::float8 / $ROWS), md5(g::text)
  FROM generate_series(1, $ROWS) g;
-- (as autovacuum would have after weeks of rows: the application's reads use the index)
ANALYZE "Event";
CREATE TABLE app_start AS SELECT clock_timestamp() AS t;
SQL
timeout_ms=$(q -c "LOAD 'matter_capacity'; SHOW matter_capacity.lock_timeout" | tr -dc 0-9)
before=$(q -c "SELECT count(*) FROM \"Event\"")
in_default=$(q -c "SELECT count(*) FROM ONLY \"Event_default\"")
echo "# $before rows, $in_default in the default partition; lock timeout $timeout_ms ms"

# the application: a row now, and a read of the last hour
cat >"$W/app.sql" <<'SQL'
\set org random(1, 50)
INSERT INTO "Event" ("orgId", body) VALUES ('org' || :org, 'x');
SELECT count(*) FROM "Event" WHERE "orgId" = 'org' || :org AND "createdAt" > now() - interval '1 hour';
SQL
# (runs of 2 s until the rescue is done, each with its own transaction log)
(
    cd "$W"; n=0
    while [ ! -f "$W/done" ]; do
        n=$((n + 1))
        "$PGBIN/pgbench" -n -c 2 -T 2 -f app.sql -h "$(cluster_dir rescue)" -p $PORT -U postgres postgres \
            --log --log-prefix=pgbench_log_$n >>"$W/pgbench.out" 2>&1
    done
) &
app=$!
sleep 1
# the monitor: the rows written before the application started, and the default partition
(
    while [ ! -f "$W/done" ]; do
        q -c "SELECT (SELECT count(*) FROM \"Event\" WHERE \"createdAt\" < (SELECT t FROM app_start)) || ' ' ||
                     (SELECT count(*) FROM ONLY \"Event_default\")" >>"$W/monitor.out" 2>&1
        sleep "${MC_RESCUE_MONITOR_PAUSE:-0.05}"   # bench: longer; each look reads every old row
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
tx=$(cat "$W"/pgbench_log_* | awk '$4 == 0' | wc -l)   # transactions that did not fail
failed=$(cat "$W"/pgbench_log_* | awk '$4 != 0' | wc -l)
after=$(q -c "SELECT count(*) FROM \"Event\"")
left=$(q -c "SELECT count(*) FROM ONLY \"Event_default\"")
periods=$(q -c "SELECT count(*) FROM capacity_rollover_log WHERE action = 'created' AND partition_name LIKE 'Event_p%' AND logged_at > (SELECT t FROM app_start)")
steps=$(awk '{print $2}' "$W/monitor.out" | uniq | wc -l)
old_seen=$(awk '{print $1}' "$W/monitor.out" | sort -u | tr '\n' ' ')
# the slowest transactions, and how long application statements waited for locks in all
slow=$(cat "$W"/pgbench_log_* | awk '{print int($3/1000)}' | sort -n | tail -5 | tr '\n' ' ')
echo "# procedure: $periods periods created in $(( (t1 - t0) / 1000000 )) ms; application: $tx transactions, $failed failed, worst $worst ms (slowest five: $slow ms)"
echo "# monitor: $(wc -l <"$W/monitor.out") looks, old rows seen: $old_seen, default partition sizes: $(awk '{print $2}' "$W/monitor.out" | uniq | tr '\n' ' ')"
[ "$failed" = 0 ] && [ "$tx" -gt 10 ]; ok $? "procedure: no application statement failed ($tx transactions)"
[ "$worst" -lt $((timeout_ms + MARGIN_MS)) ]; ok $? "procedure: worst application transaction ${worst} ms < lock timeout ${timeout_ms} ms + ${MARGIN_MS} ms"
[ "$after" = $((before + tx)) ]; ok $? "procedure: no row lost ($before before + $tx inserted = $after after)"
[ "$left" = 0 ]; ok $? "procedure: the default partition is empty ($left rows left)"
[ "$old_seen" = "$in_default " ]; ok $? "procedure: every look saw all $in_default old rows (seen: $old_seen)"
[ "$steps" -ge 4 ]; ok $? "procedure: the default partition shrank in committed steps ($steps sizes seen)"

# --- function form: bounded per call, says what it left ------------------
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE "Audit" (id bigint, "createdAt" timestamptz NOT NULL) PARTITION BY RANGE ("createdAt");
SELECT capacity_manage('"Audit"', 'createdAt', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('"Audit"', as_of => '2026-11-01 00:00+00');
-- ten days of 1,000 rows each after the last period
INSERT INTO "Audit" SELECT g, '2026-11-03 00:00+00'::timestamptz + (g % 10000) * interval '86.4 seconds'
  FROM generate_series(0, 9999) g;
SQL
calls=0; reported_ok=0
while :; do
    calls=$((calls + 1))
    out=$(q -c "SET matter_capacity.rescue_rows_per_call = 3500" \
            -c "SELECT action || '|' || coalesce(detail, '') FROM capacity_rollover('\"Audit\"', as_of => '2026-11-12 12:00+00')")
    moved=$(echo "$out" | grep '^moved_rows' | awk -F'|' '{s += $2} END {print s + 0}')
    deferred=$(echo "$out" | grep '^deferred' || true)
    left=$(q -c "SELECT count(*) FROM ONLY \"Audit_default\"")
    echo "# call $calls: moved $moved rows; $(echo "$deferred" | cut -c1-90); $left left"
    [ "$moved" -le 3500 ] || reported_ok=1
    if [ -z "$deferred" ]; then break; fi
    said=$(echo "$deferred" | sed -E 's/^deferred\|([0-9]+) rows.*/\1/')
    [ "$said" = "$left" ] || reported_ok=1
    [ $calls -lt 10 ] || break
done
[ $reported_ok = 0 ]; ok $? "function: each call moved at most rescue_rows_per_call rows and said exactly how many it left"
[ $calls = 4 ] && [ "$left" = 0 ]; ok $? "function: 10,000 rows in 4 calls of 3 periods at most, then the default partition is empty"
[ "$(q -c "SELECT count(*) FROM \"Audit\"")" = 10000 ]; ok $? "function: no row lost"
