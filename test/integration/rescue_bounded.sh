#!/usr/bin/env bash
# The application's wait stays bounded by matter_capacity.lock_timeout
# while the rollover rescues rows from a default partition, even when the
# table owner's code is slow (docs/partitioning.md, "A large default
# partition"):
#   1. a row trigger on the default partition that sleeps for a row the
#      attach burst moves (a row that arrived after step 1): the burst's
#      moves run under a time limit of what is left of the lock timeout, so
#      writers queued behind our SHARE lock on the parent wait about one
#      lock timeout, not the trigger's 3 s; the period is reported
#      skipped_locked naming the trigger, its rows stay in the default
#      partition (none lost, no unattached table left).
#   2. the function form with two tables, the second's rescue slow (a row
#      trigger sleeping in step 1): every table's step 1 runs before any
#      table's attach burst, so writers of the first table do not wait for
#      the second table's build and bulk move.
# Lock-bound checks are the only timing assertions (margin as lock_safety.sh).
# Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55481
MARGIN_MS=400
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir bounded)" -p $PORT -U postgres -d postgres "$@"; }
W=$(mktemp -d)
chmod 777 "$W"
trap 'cluster_stop bounded; [ -n "${KEEP:-}" ] || rm -rf "$W"; echo "# workdir $W"' EXIT

cluster_start bounded $PORT
timeout_ms=$(q -c "LOAD 'matter_capacity'; SHOW matter_capacity.lock_timeout" | tr -dc 0-9)

# app NAME TABLE: pgbench inserting current rows into TABLE (2 clients) in
# runs of 1 s until $W/done_NAME exists; each run logs its transactions.
app() {
    local name=$1 table=$2
    echo "INSERT INTO \"$table\" (body) VALUES ('app');" >"$W/$name.sql"
    (
        cd "$W"; n=0
        while [ ! -f "$W/done_$name" ]; do
            n=$((n + 1))
            "$PGBIN/pgbench" -n -c 2 -T 1 -f "$name.sql" -h "$(cluster_dir bounded)" -p $PORT -U postgres postgres \
                --log --log-prefix="log_${name}_$n" >>"$W/pgbench_$name.out" 2>&1
        done
    ) &
}
worst_of() { cat "$W"/log_"$1"_* | awk 'BEGIN{m=0} {if ($3>m) m=$3} END{printf "%d", m/1000}'; }
count_of() { cat "$W"/log_"$1"_* | awk '$4 == 0' | wc -l; }
failed_of() { cat "$W"/log_"$1"_* | awk '$4 != 0' | wc -l; }

# --- 1. a slow trigger fired by the attach burst's move ---------------------
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE ROLE tick_owner;
GRANT CREATE ON SCHEMA public TO tick_owner;
CREATE TABLE "Tick" (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL DEFAULT now(), body text)
  PARTITION BY RANGE (at);
ALTER TABLE "Tick" OWNER TO tick_owner;
SELECT capacity_manage('"Tick"', 'at', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('"Tick"', as_of => now() - interval '3 days');
-- one row of yesterday waits in the default partition
INSERT INTO "Tick" (at, body) VALUES (now() - interval '1 day', 'seed');
-- the owner's trigger: moving the seed (step 1) writes a late row of the
-- same period, which the attach burst then moves: that one sleeps 3 s
CREATE FUNCTION tick_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.body = 'seed' THEN
    INSERT INTO public."Tick" (at, body) VALUES (OLD.at, 'late');
  ELSIF OLD.body = 'late' THEN
    PERFORM pg_sleep(3);
  END IF;
  RETURN OLD;
END $$;
ALTER FUNCTION tick_slow() OWNER TO tick_owner;
CREATE TRIGGER tick_slow AFTER DELETE ON "Tick_default" FOR EACH ROW EXECUTE FUNCTION tick_slow();
SQL
before=$(q -c 'SELECT count(*) FROM "Tick"')
app tick Tick
sleep 1
q -c "CALL capacity_rollover_proc('\"Tick\"')" >"$W/proc_tick.out" 2>&1
touch "$W/done_tick"
wait
worst=$(worst_of tick); tx=$(count_of tick)
after=$(q -c 'SELECT count(*) FROM "Tick"')
yesterday=$(q -c "SELECT 'Tick_p' || to_char((now() - interval '1 day') AT TIME ZONE 'UTC', 'YYYYMMDD')")
skip=$(q -c "SELECT detail FROM capacity_rollover_log WHERE action = 'skipped_locked' AND partition_name = '$yesterday'" | head -1)
echo "# lock timeout $timeout_ms ms; application: $tx inserts, worst $worst ms; $yesterday: ${skip:-not skipped}"
[ "$(failed_of tick)" = 0 ] && [ "$tx" -gt 10 ]; ok $? "trigger: no application insert failed ($tx)"
[ "$worst" -lt $((timeout_ms + MARGIN_MS)) ]; ok $? "trigger: worst application insert ${worst} ms < lock timeout ${timeout_ms} ms + ${MARGIN_MS} ms (the trigger sleeps 3 s)"
echo "$skip" | grep -q 'tick_slow'; ok $? "trigger: yesterday's period reported skipped_locked, naming the trigger"
[ "$after" = $((before + tx)) ] && [ "$(q -c "SELECT body FROM ONLY \"Tick_default\" WHERE at < now() - interval '12 hours'")" = seed ]
ok $? "trigger: no row lost ($before + $tx = $after), the seed row is still in the default partition"
[ "$(q -c "SELECT count(*) FROM pg_class WHERE relname LIKE '$yesterday%'")" = 0 ]; ok $? "trigger: no table of yesterday's period was left behind"
[ "$(q -c "SELECT count(*) FROM capacity_rollover_log WHERE action = 'created' AND partition_name = 'Tick_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')")" = 1 ]
ok $? "trigger: today's period was attached all the same"

# --- 2. the function form: a slow second table does not hold the first ----
q >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP TABLE "Tick";
CREATE TABLE "A" (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL DEFAULT now(), body text)
  PARTITION BY RANGE (at);
CREATE TABLE "B" (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL DEFAULT now(), body text)
  PARTITION BY RANGE (at);
SELECT capacity_manage('"A"', 'at', 'day', premake => 1), capacity_manage('"B"', 'at', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('"A"', as_of => now() - interval '3 days');
SELECT count(*) FROM capacity_rollover('"B"', as_of => now() - interval '3 days');
-- B's rescue is slow: six rows of yesterday, the owner's trigger sleeps 0.5 s for each
INSERT INTO "B" (at, body) SELECT now() - interval '1 day', 'old' FROM generate_series(1, 6);
CREATE FUNCTION b_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.5); RETURN OLD; END $$;
CREATE TRIGGER b_slow AFTER DELETE ON "B_default" FOR EACH ROW EXECUTE FUNCTION b_slow();
SQL
before=$(q -c 'SELECT count(*) FROM "A"')
app a A
sleep 1
q -c "SELECT action || ' ' || partition_name FROM capacity_rollover() ORDER BY 1" >"$W/func.out" 2>&1
touch "$W/done_a"
wait
worst=$(worst_of a); tx=$(count_of a)
after=$(q -c 'SELECT count(*) FROM "A"')
echo "# function form: $(grep -c created "$W/func.out") periods created; application on \"A\": $tx inserts, worst $worst ms"
[ "$(failed_of a)" = 0 ] && [ "$tx" -gt 10 ]; ok $? "function: no application insert failed ($tx)"
[ "$worst" -lt $((timeout_ms + MARGIN_MS)) ]; ok $? "function: worst insert into the first table ${worst} ms < lock timeout ${timeout_ms} ms + ${MARGIN_MS} ms (the second table's rescue takes 3 s)"
[ "$(grep -c '^created A_p' "$W/func.out")" = 2 ] && [ "$(grep -c '^created B_p' "$W/func.out")" = 3 ]
ok $? "function: both tables' periods created (A: today, tomorrow; B: yesterday, today, tomorrow)"
[ "$after" = $((before + tx)) ] && [ "$(q -c 'SELECT count(*) FROM ONLY "A_default"')" = 0 ] &&
    [ "$(q -c 'SELECT count(*) FROM "B"')" = 6 ] && [ "$(q -c 'SELECT count(*) FROM ONLY "B_default"')" = 0 ]
ok $? "function: no row lost, both default partitions emptied ($before + $tx = $after in A)"

# --- 3. the function form when a later burst fails: the round is redone ----
# "D"'s burst meets the trigger of part 1 (a late row whose move sleeps 3 s):
# its burst fails within the lock timeout, the whole round is undone (its
# step 1 cannot be undone alone) and done again without D's periods.
q >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP TABLE "A", "B";
CREATE TABLE "C" (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL DEFAULT now(), body text)
  PARTITION BY RANGE (at);
CREATE TABLE "D" (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL DEFAULT now(), body text)
  PARTITION BY RANGE (at);
SELECT capacity_manage('"C"', 'at', 'day', premake => 1), capacity_manage('"D"', 'at', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('"C"', as_of => now() - interval '3 days');
SELECT count(*) FROM capacity_rollover('"D"', as_of => now() - interval '3 days');
INSERT INTO "D" (at, body) VALUES (now() - interval '1 day', 'seed');
CREATE FUNCTION d_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.body = 'seed' THEN
    INSERT INTO public."D" (at, body) VALUES (OLD.at, 'late');
  ELSIF OLD.body = 'late' THEN
    PERFORM pg_sleep(3);
  END IF;
  RETURN OLD;
END $$;
CREATE TRIGGER d_slow AFTER DELETE ON "D_default" FOR EACH ROW EXECUTE FUNCTION d_slow();
SQL
before=$(q -c 'SELECT count(*) FROM "C"')
app c C
sleep 1
q -c "SELECT action || ' ' || partition_name || ' ' || coalesce(detail, '') FROM capacity_rollover() ORDER BY 1" >"$W/redo.out" 2>&1
touch "$W/done_c"
wait
worst=$(worst_of c); tx=$(count_of c)
after=$(q -c 'SELECT count(*) FROM "C"')
echo "# function form, redone: $(grep -c '^created' "$W/redo.out") periods created, $(grep -c '^skipped_locked' "$W/redo.out") skipped; application on \"C\": $tx inserts, worst $worst ms"
[ "$(failed_of c)" = 0 ] && [ "$tx" -gt 10 ]; ok $? "redo: no application insert failed ($tx)"
[ "$worst" -lt $((timeout_ms + MARGIN_MS)) ]; ok $? "redo: worst insert into the first table ${worst} ms < lock timeout ${timeout_ms} ms + ${MARGIN_MS} ms"
[ "$(grep -c '^created C_p' "$W/redo.out")" = 2 ] && [ "$(grep -c '^created D_p' "$W/redo.out")" = 0 ] &&
    [ "$(grep '^skipped_locked D_p' "$W/redo.out" | grep -c 'd_slow')" = 3 ]
ok $? "redo: C's periods created; D's three reported skipped_locked naming the trigger, none created"
[ "$after" = $((before + tx)) ] && [ "$(q -c 'SELECT count(*) FROM ONLY "C_default"')" = 0 ] &&
    [ "$(q -c 'SELECT body FROM ONLY "D_default"')" = seed ] &&
    [ "$(q -c "SELECT count(*) FROM pg_class WHERE relname LIKE 'D_p%'")" = 2 ]
ok $? "redo: no row lost, D's seed row still in its default partition, no table of D's new periods left"
[ "$(q -c "SELECT count(*) FROM capacity_rollover_log WHERE partition_name LIKE 'D\_p%' AND action = 'created'")" = 2 ]
ok $? "redo: the undone round left no log row"

# --- 4. a default partition a foreign key references: no row moved --------
# Moving a row is a DELETE from the default partition, which fired the key's
# ON DELETE CASCADE and deleted the referencing rows (found while fixing the
# above). Now such rows stay where they are and the period is reported.
q >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP TABLE "C", "D";
CREATE TABLE "Order" (at timestamptz NOT NULL, id bigint NOT NULL, UNIQUE (at, id)) PARTITION BY RANGE (at);
SELECT capacity_manage('"Order"', 'at', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('"Order"', as_of => '2026-11-01 00:00+00');
INSERT INTO "Order" VALUES ('2026-11-10 10:00+00', 1), ('2026-11-10 11:00+00', 2);
CREATE TABLE "Line" (order_at timestamptz, order_id bigint,
                     FOREIGN KEY (order_at, order_id) REFERENCES "Order" (at, id) ON DELETE CASCADE);
INSERT INTO "Line" VALUES ('2026-11-10 10:00+00', 1), ('2026-11-10 11:00+00', 2);
SQL
out=$(q -c "SELECT action || ' ' || coalesce(partition_name, '') || ' ' || coalesce(detail, '') FROM capacity_rollover('\"Order\"', as_of => '2026-11-10 12:00+00') ORDER BY 1" 2>&1)
echo "$out" | sed 's/^/# /'
[ "$(q -c 'SELECT count(*) FROM "Line"')" = 2 ] && [ "$(q -c 'SELECT count(*) FROM ONLY "Order_default"')" = 2 ]
ok $? "foreign key: no referencing row deleted, the referenced rows stay in the default partition"
echo "$out" | grep '^failed Order_p20261110' | grep -q '"Line_order_at_order_id_fkey" of table public."Line" references'
ok $? "foreign key: the period is reported failed, naming the key"
echo "$out" | grep -q '^created Order_p20261111'; ok $? "foreign key: a period without waiting rows is made all the same"

# --- 5. an application UPDATE of a row step 1 moved: no deadlock victim ----
# Step 1 deletes the period's rows from the default partition; an
# application transaction updating one of them waits for us while holding
# the parent, which the attach burst then waits for: a deadlock. The
# application began waiting first, so its check (deadlock_timeout) used to
# find the cycle and the application failed with 40P01 (review F9). Now the
# burst looks for a deadlock after 10 ms, gives way, undoes step 1, and the
# application's UPDATE goes through. The owner's trigger holds step 1 for
# 1 s after the first row so the UPDATE arrives then; the application's
# deadlock_timeout is 3 s and our lock timeout 6 s: without the fix the
# application either fails (its check runs while the burst waits) or waits
# through all the burst's attempts.
# The procedure (and the worker) then try once more at once with the locks
# taken first and the rows moved under them: no row of ours is waited for
# while it waits, so it cannot deadlock, and an application updating rows
# of the default partition all the time no longer starves the rescue
# (review 3, F3). The function form cannot: the application, having
# waited for a row of a subtransaction since committed into the call's
# transaction, waits for that transaction to end, so the period is
# reported skipped_locked and its rows stay for the next call.
deadlock_case() {   # $1 table, $2 the rollover statement, $3 function|procedure
    local t=$1
    q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE "$t" (id bigint NOT NULL, at timestamptz NOT NULL, n int NOT NULL DEFAULT 0) PARTITION BY RANGE (at);
SELECT capacity_manage('"$t"', 'at', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('"$t"', as_of => '2026-11-01 00:00+00');
INSERT INTO "$t" (id, at) VALUES (1, '2026-11-10 10:00+00'), (2, '2026-11-10 11:00+00'), (3, '2026-11-10 12:00+00');
CREATE FUNCTION ${t}_hold() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  IF OLD.id = 2 THEN PERFORM pg_sleep(1); END IF;
  RETURN OLD;
END \$\$;
CREATE TRIGGER ${t}_hold BEFORE DELETE ON "${t}_default" FOR EACH ROW EXECUTE FUNCTION ${t}_hold();
SQL
    q -c "SET matter_capacity.lock_timeout = 6000" -c "$2" >"$W/$t.out" 2>&1 &
    roll=$!
    for _ in $(seq 100); do
        [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%capacity_rollover%'")" = 1 ] && break
        sleep 0.05
    done
    t0=$(date +%s%N)
    q -c "SET deadlock_timeout = '3s'; UPDATE \"$t\" SET n = n + 1 WHERE id = 1" >"$W/${t}_app.out" 2>&1
    app_rc=$?
    app_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    wait $roll
    sed 's/^/# /' "$W/$t.out" "$W/${t}_app.out"
    [ $app_rc = 0 ] && ! grep -q 40P01 "$W/${t}_app.out" && [ "$(q -c "SELECT n FROM \"$t\" WHERE id = 1")" = 1 ]
    ok $? "deadlock ($t): the application's UPDATE of a row being moved went through (no 40P01)"
    echo "# the application's UPDATE took $app_ms ms (the owner's trigger holds step 1 for 1 s; our lock timeout is 6000 ms)"
    [ "$app_ms" -lt 6000 ]
    ok $? "deadlock ($t): the application waited for step 1 only, not for the burst's lock attempts"
    if [ "$3" = function ]; then
        grep '^skipped_locked Ev_p20261110' "$W/$t.out" | grep -q 'the rescue gave way to it (deadlock)'
        ok $? "deadlock ($t): the period is reported skipped_locked, the rescue having given way"
        [ "$(q -c "SELECT count(*) FROM ONLY \"${t}_default\"")" = 3 ] && [ "$(q -c "SELECT count(*) FROM pg_class WHERE relname = '${t}_p20261110'")" = 0 ]
        ok $? "deadlock ($t): the three rows stay in the default partition, no table of the period left"
    else
        grep -q "moved_rows ${t}_p20261110: 3 rows from the default partition, moved under the attach's locks" "$W/$t.out"
        ok $? "deadlock ($t): after giving way, the rescue moved the rows under its locks taken first"
        [ "$(q -c "SELECT count(*) FROM ONLY \"${t}_default\"")" = 0 ] && [ "$(q -c "SELECT count(*) FROM ONLY \"${t}_p20261110\"")" = 3 ]
        ok $? "deadlock ($t): the three rows are in their period, none left in the default partition"
    fi
    [ "$(q -c "SELECT count(*) || ' ' || sum(n) FROM \"$t\"")" = "3 1" ]
    ok $? "deadlock ($t): no row lost, the application's update kept"
}
deadlock_case Ev "SELECT action || ' ' || coalesce(partition_name, '') || ' ' || coalesce(detail, '') FROM capacity_rollover('\"Ev\"', as_of => '2026-11-10 13:00+00') ORDER BY 1" function
deadlock_case Ew "CALL capacity_rollover_proc('\"Ew\"', as_of => '2026-11-10 13:00+00')" procedure
