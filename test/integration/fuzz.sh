#!/usr/bin/env bash
# Hostile input: a seeded generator (fuzz.sql) calls every function and
# procedure of the extension with random picks of adversarial values for
# each argument: quotes, semicolons, control characters, 10 kB strings,
# 2000-deep JSON, extreme dates, infinities, NaN, huge and negative numbers,
# NULLs, and valid names so calls get past their first checks.  Each call
# runs on its own; after a failed one the state fingerprint must be what it
# was before (nothing changed on error).  Asserted: no internal error (class
# XX), no change on error, the server never crashes (no "terminated by
# signal" in its log).  MC_FUZZ_SEED and MC_FUZZ_CALLS (per function,
# default 25) vary the run; MC_FUZZ_KEEP=1 keeps the generated script and
# psql's output to read after a failure.  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
PORT=55456
SEED=${MC_FUZZ_SEED:-0.4242}
CALLS=${MC_FUZZ_CALLS:-25}
DIR=$(cluster_dir fuzz)
W=$(mktemp -d)
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p $PORT -U postgres -d fuzz "$@"; }
trap 'cluster_stop fuzz; [ -n "${MC_FUZZ_KEEP:-}" ] && echo "# kept $W" || rm -rf "$W"' EXIT

cluster_start fuzz $PORT "log_min_messages = warning"
psql -X -q -h "$DIR" -p $PORT -U postgres -d postgres -c "CREATE DATABASE fuzz" -c "CREATE ROLE fuzz_app"
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" (id bigint GENERATED ALWAYS AS IDENTITY, "orgId" text NOT NULL,
                      "createdAt" timestamptz NOT NULL DEFAULT now(), body text) PARTITION BY RANGE ("createdAt");
SELECT capacity_manage('"Event"', 'createdAt', 'week', 'orgId', 4, premake => 2, retention => '8 weeks');
SELECT count(*) FROM capacity_rollover(as_of => '2026-11-22 00:00+00');
INSERT INTO "Event" ("orgId", "createdAt") SELECT 'org' || g % 9, '2026-11-22 00:00+00'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 500) g;
CREATE TABLE "Plain" (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL, PRIMARY KEY (id, at));
INSERT INTO "Plain" (at) SELECT '2026-11-01 00:00+00'::timestamptz + g * interval '1 hour' FROM generate_series(1, 200) g;
CREATE TABLE ledger (id bigint);
SELECT capacity_register_push('webhook_p99_ms', 'ms');
SQL
q -f "$(dirname "$0")/fuzz.sql" >/dev/null

# The script, made in SQL so literals with newlines stay whole: for each
# call a fingerprint, the call, and on error whether anything changed.
# Two passes: as the superuser, then (issue 19) as fuzz_role, an ordinary
# role granted EXECUTE on every function and procedure of the extension:
# what it may call must not fail internally, change anything on error, or
# make it more than it is.
fuzz_pass() {  # fuzz_pass ROLE SEED
    local role=$1 seed=$2 n logged xx ch fns okc r
    q -c "TRUNCATE fuzz.log"
    q -c "SELECT format(E'SELECT fuzz.state() AS h0 \\\\gset\\n%s;\\n\\\\if :ERROR\\n'
                  'INSERT INTO fuzz.log VALUES (%s, %L, :''LAST_ERROR_SQLSTATE'', :''LAST_ERROR_MESSAGE'', fuzz.state() <> :''h0'');\\n'
                  '\\\\else\\nINSERT INTO fuzz.log VALUES (%s, %L, ''00000'', NULL, NULL);\\n\\\\endif',
                  sql, i, fn, i, fn)
            FROM fuzz.calls($seed, $CALLS) ORDER BY i" >"$W/calls.sql"
    n=$(q -c "SELECT count(*) FROM fuzz.calls($seed, $CALLS)")
    { echo "SET statement_timeout = '10s';"; echo "SET client_min_messages = error;"; echo "SET matter_capacity.lock_timeout = 100;"; cat "$W/calls.sql"; } >"$W/run.sql"
    psql -X -q -h "$DIR" -p $PORT -U "$role" -d fuzz -v ON_ERROR_STOP=0 -f "$W/run.sql" >"$W/out.$role" 2>&1

    q -c "SELECT coalesce(sqlstate, '?') || ' ' || count(*) FROM fuzz.log GROUP BY sqlstate ORDER BY count(*) DESC" | tr '\n' ',' | sed "s/^/# $role outcomes (SQLSTATE calls): /; s/,\$/\n/"
    logged=$(q -c "SELECT count(*) FROM fuzz.log")
    [ "$logged" = "$n" ]; ok $? "$role: every generated call ran and was logged ($logged of $n, seed $seed)"
    xx=$(q -c "SELECT count(*) FROM fuzz.log WHERE sqlstate LIKE 'XX%'")
    q -c "SELECT '# internal: ' || fn || ': ' || left(message, 150) FROM fuzz.log WHERE sqlstate LIKE 'XX%' LIMIT 10"
    [ "$xx" = 0 ]; ok $? "$role: no internal error (SQLSTATE class XX) for any input ($xx)"
    ch=$(q -c "SELECT count(*) FROM fuzz.log WHERE changed")
    q -c "SELECT '# changed on error: ' || fn || ' ' || sqlstate || ': ' || left(message, 150) FROM fuzz.log WHERE changed LIMIT 10"
    [ "$ch" = 0 ]; ok $? "$role: a call that failed changed nothing ($ch changed)"
    fns=$(q -c "SELECT count(DISTINCT fn) FROM fuzz.log")
    okc=$(q -c "SELECT count(*) FROM fuzz.log WHERE sqlstate = '00000'")
    [ "$fns" -gt 40 ] && [ "$okc" -gt 0 ]; ok $? "$role: every function was exercised ($fns functions, $okc calls succeeded)"
    ! grep -q 'terminated by signal' "$DIR/server.log"; ok $? "$role: the server never crashed (no 'terminated by signal' in its log)"
    r=$(q -c "SELECT count(*) FROM ledger" 2>&1)
    [ "$r" = 0 ]; ok $? "$role: the server answers and no injected statement ran (ledger still there, $r rows)"
}
fuzz_pass postgres "$SEED"

# the second pass: fingerprints and the log are written through the
# superuser's fuzz.state() (SECURITY DEFINER), the calls as fuzz_role
q >/dev/null <<'SQL'
CREATE ROLE fuzz_role LOGIN;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO fuzz_role;
GRANT EXECUTE ON ALL PROCEDURES IN SCHEMA public TO fuzz_role;
GRANT USAGE ON SCHEMA fuzz TO fuzz_role;
GRANT INSERT ON fuzz.log TO fuzz_role;
ALTER FUNCTION fuzz.state() SECURITY DEFINER SET search_path = pg_catalog, public;
SQL
fuzz_pass fuzz_role "$(awk -v s="$SEED" 'BEGIN { printf "%.4f", (s * 7919) - int(s * 7919) }')"
r=$(q -c "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls FROM pg_roles WHERE rolname = 'fuzz_role'")
[ "$r" = f ]; ok $? "fuzz_role gained no role attribute"
