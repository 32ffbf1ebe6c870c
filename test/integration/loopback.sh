#!/usr/bin/env bash
# The loopback connection (DETACH ... CONCURRENTLY from the procedure form,
# the worker's backfill CALL) connects through remote.c, on the latch: to a
# "server" that accepts the connection and never answers, the procedure
# gives up after matter_capacity.loopback_timeout and falls back to the
# bounded plain DETACH; and while it waits, SIGTERM ends the session (a
# blocking PQconnectdb would wait for an answer that never comes).  Then the
# real loopback detaches concurrently.  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
: "${PGHOST:?run through scripts/test.sh}"
DB=mc_loopback
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }

W=$(mktemp -d)
chmod 755 "$W"
SOCK="$W/.s.PGSQL.5999"
# accepts every connection and never sends a byte
python3 - "$SOCK" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.listen(64)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
PY
LISTENER=$!
BG=
cleanup() {
    [ -n "$BG" ] && kill "$BG" 2>/dev/null
    kill "$LISTENER" 2>/dev/null
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" 2>/dev/null
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE ev (at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE ev2 (at timestamptz NOT NULL) PARTITION BY RANGE (at);
-- no default partition: retention detaches CONCURRENTLY through the loopback
SELECT capacity_manage('ev', 'at', 'day', premake => 1, retention => '2 days', default_partition => false);
SELECT capacity_manage('ev2', 'at', 'day', premake => 1, retention => '2 days', default_partition => false);
SELECT count(*) FROM capacity_rollover(as_of => '2026-11-20 00:00+00');
SQL

# 1. a loopback that never answers: bounded, and the plain DETACH is used
out=$(q 2>&1 <<SQL
SET matter_capacity.loopback_conninfo = 'host=$W port=5999';
SET matter_capacity.loopback_timeout = 300;
CALL capacity_rollover_proc('ev', as_of => '2026-11-24 00:00+00');
SQL
)
echo "$out" | sed 's/^/# /'
echo "$out" | grep -q 'DETACH CONCURRENTLY of .* failed: could not connect within 300 ms'
ok $? "a loopback that never answers is given up after matter_capacity.loopback_timeout, with a warning"
n=$(q -c "SELECT count(*) FROM capacity_rollover_log WHERE partition_name IN ('ev_p20261120', 'ev_p20261121')
            AND action = 'detached' AND detail LIKE '%plain DETACH: loopback unavailable%'")
left=$(q -c "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'ev'::regclass AND c.relname IN ('ev_p20261120', 'ev_p20261121')")
[ "$n" = 2 ] && [ "$left" = 0 ]
ok $? "the old days are detached by the bounded plain DETACH instead ($n logged, $left still attached)"

# 2. SIGTERM while the loopback is connecting
PGAPPNAME=mc_slow_loopback psql -X -q -d "$DB" \
    -c "SET matter_capacity.loopback_conninfo = 'host=$W port=5999'" \
    -c "SET matter_capacity.loopback_timeout = 600000" \
    -c "CALL capacity_rollover_proc('ev2', as_of => '2026-11-24 00:00+00')" >"$W/bg.out" 2>&1 &
BG=$!
waiting=
for _ in $(seq 1 300); do
    waiting=$(q -c "SELECT pid FROM pg_stat_activity
                     WHERE application_name = 'mc_slow_loopback' AND wait_event_type = 'Extension'")
    [ -n "$waiting" ] && break
    sleep 0.1
done
[ -n "$waiting" ]
ok $? "the procedure waits for the loopback on its latch (wait event Extension), not inside libpq"
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mc_slow_loopback'" >/dev/null
gone=1
for _ in $(seq 1 300); do
    if ! kill -0 "$BG" 2>/dev/null &&
       [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mc_slow_loopback'")" = 0 ]; then
        gone=0; break
    fi
    sleep 0.1
done
sed 's/^/# /' "$W/bg.out"
ok $gone "SIGTERM ends the session while its loopback connection is slow"
BG=

# 3. the real loopback, through the same code: DETACH ... CONCURRENTLY
out=$(q -c "CALL capacity_rollover_proc('ev2', as_of => '2026-11-24 00:00+00')" 2>&1)
echo "$out" | sed 's/^/# /'
n=$(q -c "SELECT count(*) FROM capacity_rollover_log WHERE partition_name IN ('ev2_p20261120', 'ev2_p20261121')
            AND action = 'detached' AND detail LIKE '%(DETACH CONCURRENTLY)%'")
[ "$n" = 2 ]
ok $? "after it, the loopback to this server detaches concurrently ($n of 2)"

# 4. a DETACH ... CONCURRENTLY waiting for a long reader of the table is
#    cancelled after matter_capacity.loopback_statement_timeout: the period
#    stays pending (out of new queries' sight), the next period waits for
#    it (one pending detach per table), the procedure returns, and the next
#    rollover finishes it with FINALIZE
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE TABLE ev3 (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('ev3', 'at', 'day', premake => 1, retention => '2 days', default_partition => false);
SELECT count(*) FROM capacity_rollover('ev3', as_of => '2026-11-20 00:00+00');
SQL
psql -X -q -d "$DB" -c "BEGIN" -c "SELECT count(*) FROM ev3" -c "SELECT pg_sleep(6)" -c "COMMIT" >/dev/null 2>&1 &
BG=$!
sleep 1
t0=$(date +%s%N)
out=$(q -c "SET matter_capacity.loopback_statement_timeout = 1000" -c "CALL capacity_rollover_proc('ev3', as_of => '2026-11-24 00:00+00')" 2>&1)
t1=$(date +%s%N)
echo "$out" | sed 's/^/# /'
pending=$(q -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'ev3'::regclass AND inhdetachpending")
echo "$out" | grep -q 'skipped_locked ev3_p20261120: DETACH CONCURRENTLY is pending: timed out after 1000 ms' &&
    [ "$pending" = 1 ] && [ $(( (t1 - t0) / 1000000 )) -lt 4500 ] &&
    echo "$out" | grep -q "skipped_locked ev3_p20261121: retention: another partition's DETACH CONCURRENTLY is pending" &&
    ! echo "$out" | grep -q WARNING
ok $? "a DETACH CONCURRENTLY that waits for a reader past loopback_statement_timeout is cancelled and left pending ($(( (t1 - t0) / 1000000 )) ms, $pending pending)"
wait "$BG"; BG=
out=$(q -c "CALL capacity_rollover_proc('ev3', as_of => '2026-11-24 00:00+00')" 2>&1)
echo "$out" | sed 's/^/# /'
[ "$(q -c "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'ev3'::regclass AND c.relname = 'ev3_p20261120'")" = 0 ] &&
    echo "$out" | grep -q 'detached ev3_p20261120'
ok $? "the next rollover finishes it (FINALIZE) once the reader is gone"
