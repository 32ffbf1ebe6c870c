#!/usr/bin/env bash
# The online conversion (capacity_convert, capacity_convert_backfill) when
# the application or the DBA does something in the middle of it (review
# breaker4a): a STORED generated column (F1), a conversion cancelled or
# killed while it validates its bound (F5), a second CALL on the same
# table (F20), ADD COLUMN (F11), TRUNCATE (F2) and CREATE INDEX (F12)
# during the backfill, column privileges (F15), stray old rows (F16), NULL
# and negative arguments (F19).  The application's writes must never fail
# because of the conversion, and no row may be lost or come back.
# Times are pinned (as_of); waits are made with locks, not sleeps.
# Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55474
DB=postgres
NAME=convfaults
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$(cluster_dir $NAME)" -p $PORT -U postgres -d $DB "$@"; }
# a statement's output and error (with SQLSTATE), never stopping the script
qe() { psql -X -q -At -v VERBOSITY=verbose -h "$(cluster_dir $NAME)" -p $PORT -U postgres -d $DB "$@" 2>&1; }
trap 'kill $(jobs -p) 2>/dev/null; cluster_stop $NAME' EXIT
# wait until a query returns t (at most 60 s)
wait_for() { local i; for i in $(seq 1 600); do [ "$(q -c "$1")" = t ] && return 0; sleep 0.1; done; return 1; }

cluster_start $NAME $PORT
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE ROLE app LOGIN;
SQL
AS_OF="'2026-11-18 12:00+00'"
BOUND="2026-11-19 00:00+00"

# --- F1: a STORED generated column -------------------------------------------
q >/dev/null <<SQL
CREATE TABLE g (id bigint GENERATED ALWAYS AS IDENTITY, ts timestamptz NOT NULL, v int,
                v2 int GENERATED ALWAYS AS (v * 2) STORED, PRIMARY KEY (id, ts));
INSERT INTO g (ts, v) SELECT timestamptz $AS_OF - (i || ' hours')::interval, i FROM generate_series(1, 2000) i;
GRANT SELECT, INSERT, UPDATE, DELETE ON g TO app;
CALL capacity_convert('g', 'ts', 'day', premake => 2, as_of => $AS_OF);
SQL
out=$(qe -c "CALL capacity_convert_backfill('g', 200, max_batches => 2)")
ok $? "F1: the backfill of a table with a generated column copies its first batches ($out)"
out=$(qe -c "SET ROLE app" -c "INSERT INTO g (ts, v) VALUES ('2026-11-10 00:00+00', 7)" \
         -c "UPDATE g SET v = v + 10000 WHERE v = 5" -c "DELETE FROM g WHERE v = 6")
[ -z "$(echo "$out" | grep ERROR)" ]
ok $? "F1: the application writes historical rows during that backfill ($out)"
out=$(qe -c "CALL capacity_convert_backfill('g')")
[ "$(q -c "SELECT state FROM capacity_conversions WHERE table_name = 'g'::regclass")" = done ]
ok $? "F1: the backfill switches ($out)"
[ "$(q -c "SELECT count(*) || ' ' || sum(v) || ' ' || bool_and(v2 = v * 2) FROM g")" = "2000 2011001 true" ]
ok $? "F1: every row is there once, with its generated value (count, sum, v2)"

# --- F5 / F20: a conversion interrupted while it validates its bound ----------
q >/dev/null <<SQL
CREATE TABLE c (id bigint, ts timestamptz NOT NULL, PRIMARY KEY (id, ts));
INSERT INTO c SELECT i, timestamptz $AS_OF - (i || ' minutes')::interval FROM generate_series(1, 1000) i;
SQL
# Step 2 (VALIDATE) is made to wait, without a race: a reader G holds the
# table while step 1 waits for it (lock timeout raised for that CALL); H
# queues a SHARE UPDATE EXCLUSIVE lock behind step 1; G goes; step 1
# commits its constraint and H gets the table before step 2 asks for it.
hold_in_step2() {
    psql -X -q -h "$(cluster_dir $NAME)" -p $PORT -U postgres -d $DB \
         -c "BEGIN" -c "SELECT count(*) FROM c" -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
    wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(120)')"
    (PGAPPNAME=conv PGOPTIONS='-c matter_capacity.lock_timeout=60000' \
        qe -c "CALL capacity_convert('c', 'ts', 'day', premake => 2, as_of => $AS_OF)" >"$MC_RUN/conv.out") &
    wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'conv' AND wait_event_type = 'Lock')"
    psql -X -q -h "$(cluster_dir $NAME)" -p $PORT -U postgres -d $DB \
         -c "BEGIN" -c "LOCK TABLE c IN SHARE UPDATE EXCLUSIVE MODE" -c "SELECT pg_sleep(122)" >/dev/null 2>&1 &
    wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE 'LOCK TABLE c%' AND wait_event_type = 'Lock')"
    q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(120)'" >/dev/null
    wait_for "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'c_convert_bound' AND NOT convalidated)
                 AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'conv' AND wait_event_type = 'Lock')"
}
release_h() { q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(122)'" >/dev/null; }

# cancelled: the bound constraint is removed before the CALL ends
hold_in_step2
ok $? "F5: a conversion waits in step 2 with its bound constraint committed"
# F20: a second CALL meanwhile is refused clearly, changing nothing
out=$(qe -c "CALL capacity_convert('c', 'ts', 'day', premake => 2, as_of => $AS_OF)")
echo "$out" | grep -q "55P03.*already running in session"
ok $? "F20: a second capacity_convert of the same table: 55P03 naming the session ($(echo "$out" | head -1))"
q -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'conv'" >/dev/null
release_h
wait
grep -q "57014" "$MC_RUN/conv.out"
ok $? "F5: the cancelled conversion reports the cancel ($(head -1 "$MC_RUN/conv.out"))"
[ "$(q -c "SELECT count(*) FROM pg_constraint WHERE conrelid = 'c'::regclass AND contype = 'c'")" = 0 ]
ok $? "F5: a cancelled conversion leaves no bound constraint"
out=$(qe -c "INSERT INTO c VALUES (-1, '$BOUND'::timestamptz + interval '1 hour')")
[ -z "$(echo "$out" | grep ERROR)" ]
ok $? "F5: rows after the bound are accepted after a cancel ($out)"
q -c "DELETE FROM c WHERE id = -1"

# killed (no handler runs): the constraint stays, and refuses rows from the
# bound on; the next CALL removes it and converts
hold_in_step2
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'conv'" >/dev/null
release_h
wait
out=$(qe -c "INSERT INTO c VALUES (-1, '$BOUND'::timestamptz + interval '1 hour')")
echo "$out" | grep -q 23514
ok $? "F5: a killed conversion leaves its bound, which refuses rows from the bound on ($(echo "$out" | head -1))"
# and what a kill after step 3 leaves too: the empty partitioned copy
q -c "CREATE TABLE c_converting (LIKE c) PARTITION BY RANGE (ts)" -c "CREATE TABLE c_default PARTITION OF c_converting DEFAULT"
out=$(qe -c "CALL capacity_convert('c', 'ts', 'day', premake => 2, as_of => $AS_OF)")
echo "$out" | grep -q "removed what an interrupted conversion of public.c left: constraint c_convert_bound, public.c_converting"
ok $? "F5: the retry after a kill removes the leftover bound and copy and says so ($(echo "$out" | head -1))"
[ "$(q -c "SELECT relkind FROM pg_class WHERE oid = 'c'::regclass")" = p ] &&
    [ "$(q -c "SELECT count(*) FROM c")" = 1000 ]
ok $? "F5: ... and converts"

# --- F19: NULL and negative arguments ---------------------------------------
q >/dev/null <<SQL
CREATE TABLE n (id bigint, ts timestamptz NOT NULL, PRIMARY KEY (id, ts));
INSERT INTO n SELECT i, timestamptz $AS_OF - (i || ' minutes')::interval FROM generate_series(1, 100) i;
SQL
out=$(qe -c "CALL capacity_convert('n', 'ts', 'day', dry_run => NULL, as_of => $AS_OF)")
echo "$out" | grep -q "22004" && [ "$(q -c "SELECT relkind FROM pg_class WHERE oid = 'n'::regclass")" = r ]
ok $? "F19: dry_run => NULL is refused (22004) and converts nothing ($(echo "$out" | head -1))"
q -c "CALL capacity_convert('n', 'ts', 'day', as_of => $AS_OF)" 2>/dev/null
out=$(qe -c "CALL capacity_convert_backfill('n', 10, max_batches => -1)")
echo "$out" | grep -q "22023" && [ "$(q -c "SELECT state FROM capacity_conversions WHERE table_name = 'n'::regclass")" = converted ]
ok $? "F19: max_batches => -1 is refused (22023) and does nothing ($(echo "$out" | head -1))"

# --- F20: two backfills of one table ----------------------------------------
# a row lock of the application makes the first backfill's batch wait
psql -X -q -h "$(cluster_dir $NAME)" -p $PORT -U postgres -d $DB \
     -c "BEGIN" -c "SELECT 1 FROM n WHERE id = 1 FOR UPDATE" -c "SELECT pg_sleep(121)" >/dev/null 2>&1 &
wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(121)')"
(PGAPPNAME=bf qe -c "CALL capacity_convert_backfill('n')" >"$MC_RUN/bf1.out") &
wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'bf' AND wait_event_type = 'Lock')"
out=$(qe -c "CALL capacity_convert_backfill('n')")
echo "$out" | grep -q "55P03.*already running in session"
ok $? "F20: a second backfill of the same table: 55P03 naming the session ($(echo "$out" | head -1))"
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(121)'" >/dev/null
wait
[ "$(q -c "SELECT state FROM capacity_conversions WHERE table_name = 'n'::regclass")" = done ] &&
    [ "$(q -c "SELECT count(*) FROM n")" = 100 ]
ok $? "F20: the first backfill completes ($(grep -c ERROR "$MC_RUN/bf1.out") errors)"

# --- F11 / F2 / F12: schema changes and TRUNCATE during the backfill ---------
mk() {
    q >/dev/null <<SQL
CREATE TABLE $1 (id bigint, ts timestamptz NOT NULL, v int, PRIMARY KEY (id, ts));
INSERT INTO $1 SELECT i, timestamptz $AS_OF - (i || ' minutes')::interval, i FROM generate_series(1, 5000) i;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON $1 TO app;
CALL capacity_convert('$1', 'ts', 'day', premake => 2, as_of => $AS_OF);
CALL capacity_convert_backfill('$1', 500, max_batches => 3);
SQL
}
mk a
q -c "ALTER TABLE a ADD COLUMN source text"
out=$(qe -c "SET ROLE app" -c "INSERT INTO a (id, ts, v, source) VALUES (-1, '2026-11-15 00:00+00', 0, 'web')" \
         -c "UPDATE a SET v = v + 1, source = 'upd' WHERE id = 5")
[ -z "$(echo "$out" | grep -E 'ERROR|WARNING')" ]
ok $? "F11: after ADD COLUMN during the backfill the application writes historical rows ($out)"
out=$(qe -c "CALL capacity_convert_backfill('a')")
echo "$out" | grep -q "out of date (added column source text); making it again" &&
    [ "$(q -c "SELECT state FROM capacity_conversions WHERE table_name = 'a'::regclass")" = done ]
ok $? "F11: the backfill makes its copy again and switches ($(echo "$out" | grep -o 'out of date[^;]*' | head -1))"
[ "$(q -c "SELECT count(*) || ' ' || count(source) || ' ' || sum(v) FROM a")" = "5001 2 12502501" ]
ok $? "F11: every row and the new column's values are there"

mk t
q -c "TRUNCATE t"
q -c "INSERT INTO t VALUES (1, '2026-11-15 00:00+00', 1)"
q -c "CALL capacity_convert_backfill('t')" 2>/dev/null
[ "$(q -c "SELECT count(*) FROM t")" = 1 ] && [ "$(q -c "SELECT state FROM capacity_conversions WHERE table_name = 't'::regclass")" = done ]
ok $? "F2: rows truncated during the backfill do not come back at the switch ($(q -c "SELECT count(*) FROM t") rows)"

mk i
q -c "CREATE INDEX i_v ON i (v)"
out=$(qe -c "CALL capacity_convert_backfill('i')")
echo "$out" | grep -q "out of date (added index USING btree (v)); making it again"
ok $? "F12: an index created during the backfill is built in the copy before the switch, not under its lock ($(echo "$out" | grep -o 'out of date[^;]*' | head -1))"
[ "$(q -c "SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = t.relid AND pg_get_indexdef(x.indexrelid) LIKE '%USING btree (v)'))
             FROM pg_partition_tree('i') t JOIN pg_class c ON c.oid = t.relid WHERE c.relkind = 'r'")" = 0 ] &&
    [ "$(q -c "SELECT count(*) || ' ' || sum(v) FROM i")" = "5000 12502500" ]
ok $? "F12: every period has the index and every row"

# a replay that fails (here: the owner's constraint on a period of the
# private copy refuses a value the table accepts) keeps the application's
# write; the copy is marked stale and made again before any switch
mk w
q -c "ALTER TABLE w_p20261117 ADD CONSTRAINT no_minus_7 CHECK (v <> -7) NOT VALID"
out=$(qe -c "SET ROLE app" -c "INSERT INTO w VALUES (-7, '2026-11-17 06:00+00', -7)")
[ -z "$(echo "$out" | grep ERROR)" ] && echo "$out" | grep -q "WARNING.*was not replayed" &&
    [ "$(q -c "SELECT count(*) FROM w WHERE id = -7")" = 1 ]
ok $? "a failed replay never fails the application's write ($(echo "$out" | grep -o 'WARNING.*' | head -1))"
out=$(qe -c "CALL capacity_convert_backfill('w')")
echo "$out" | grep -q "out of date (a write to w_historical was not replayed" &&
    [ "$(q -c "SELECT state FROM capacity_conversions WHERE table_name = 'w'::regclass")" = done ] &&
    [ "$(q -c "SELECT count(*) || ' ' || sum(v) FROM w")" = "5001 12502493" ]
ok $? "... the backfill makes its copy again: every row, the replayed one too"

# --- F15: column privileges -------------------------------------------------
q >/dev/null <<SQL
CREATE TABLE cg (id bigint, ts timestamptz NOT NULL, secret text, PRIMARY KEY (id, ts));
INSERT INTO cg SELECT i, timestamptz $AS_OF - (i || ' minutes')::interval, 's' FROM generate_series(1, 100) i;
GRANT SELECT (id, ts), INSERT (id, ts) ON cg TO app;
CALL capacity_convert('cg', 'ts', 'day', premake => 2, as_of => $AS_OF);
SQL
out=$(qe -c "SET ROLE app" -c "SELECT count(id) FROM cg" -c "INSERT INTO cg (id, ts) VALUES (-1, '2026-11-15 00:00+00')")
[ "$out" = 100 ]
ok $? "F15: column privileges are carried over ($out)"
out=$(qe -c "SET ROLE app" -c "SELECT count(secret) FROM cg")
echo "$out" | grep -q 42501
ok $? "F15: ... and only those ($(echo "$out" | head -1))"

# --- F16: stray rows far in the past, -infinity -----------------------------
q >/dev/null <<SQL
CREATE TABLE s (id bigint, ts timestamptz NOT NULL, PRIMARY KEY (id, ts));
INSERT INTO s SELECT i, timestamptz $AS_OF - (i || ' minutes')::interval FROM generate_series(1, 3000) i;
INSERT INTO s VALUES (-1, '1970-01-01 00:00+00'), (-2, '-infinity');
CALL capacity_convert('s', 'ts', 'day', premake => 2, as_of => $AS_OF);
SQL
out=$(qe -c "CALL capacity_convert_backfill('s')")
[ "$(q -c "SELECT state FROM capacity_conversions WHERE table_name = 's'::regclass")" = done ]
ok $? "F16: a 1970 row and a -infinity row do not stop the backfill ($(echo "$out" | grep -o 'ERROR.*' | head -1))"
[ "$(q -c "SELECT count(*) FROM s")" = 3002 ] &&
    [ "$(q -c "SELECT string_agg(tableoid::regclass::text, ',' ORDER BY id) FROM s WHERE id < 0")" = "s_default,s_p19700101" ] &&
    [ "$(q -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 's'::regclass")" -lt 10 ]
ok $? "F16: the 1970 row gets its own period, -infinity the default partition, no period in between"
