#!/usr/bin/env bash
# bench/default_rescue_burst.sh — where the application's wait of one rescue
# batch goes (docs/benchmarks.md, "Emptying a large default partition").
# One session, no application: the default partition of a daily table holds
# ROWS rows over 18 days (index on the time column, vacuumed and analyzed).
# Replays by hand, timed by psql, what one batch of CALL
# capacity_rollover_proc() runs (src/rollover.c):
#   a. a period with rows waiting (~ROWS/18): step 1 (build, bulk move; weak
#      locks), then the burst: SHARE on the parent, ACCESS EXCLUSIVE on the
#      default, the DELETE of rows that arrived meanwhile, ATTACH, COMMIT;
#   b. an empty future period: ATTACH as the rollover does it, and ATTACH
#      after a validated CHECK on the default partition excluding its range
#      (PostgreSQL's advice; ADD ... NOT VALID, VALIDATE CONSTRAINT).
# Usage: bench/default_rescue_burst.sh [ROWS]
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROWS=${1:-5000000}
PORT=55484
install_dependencies
build_and_install
mkdir -p "$MC_RUN"
cluster_start burst $PORT
trap 'cluster_stop burst' EXIT
q() { psql -X -q -h "$(cluster_dir burst)" -p $PORT -U postgres -d postgres "$@"; }
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
q -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" (id bigint GENERATED ALWAYS AS IDENTITY, "orgId" text NOT NULL,
                      "createdAt" timestamptz NOT NULL, body text)
  PARTITION BY RANGE ("createdAt");
CREATE INDEX ON "Event" ("createdAt");
SELECT capacity_manage('"Event"', 'createdAt', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('"Event"', as_of => '2026-11-09 12:00+00');
INSERT INTO "Event" ("orgId", "createdAt", body)
SELECT 'org' || (g % 50), '2026-11-30 12:00+00'::timestamptz - interval '18 days' * (g::float8 / $ROWS), md5(g::text)
  FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE "Event";
SQL
echo "default partition: $(q -At -c 'SELECT count(*) FROM ONLY "Event_default"') rows, $(q -At -c "SELECT pg_size_pretty(pg_relation_size('\"Event_default\"'))")"
# timed STATEMENT: psql's \timing for one statement, labelled
timed() { sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; }
cols='id, "orgId", "createdAt", body'
like='(LIKE "Event" INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES INCLUDING STORAGE INCLUDING GENERATED'
range="\"createdAt\" >= '2026-11-20 00:00+00' AND \"createdAt\" < '2026-11-21 00:00+00'"
mapfile -t t < <(q -v ON_ERROR_STOP=1 <<SQL | timed
BEGIN;
CREATE TABLE "Event_p20261120" $like, CHECK ($range));
\timing on
WITH moved AS (DELETE FROM ONLY "Event_default" WHERE $range RETURNING $cols) INSERT INTO "Event_p20261120" SELECT * FROM moved;
LOCK "Event" IN SHARE MODE;
LOCK "Event_default" IN ACCESS EXCLUSIVE MODE;
WITH moved AS (DELETE FROM ONLY "Event_default" WHERE $range RETURNING $cols) INSERT INTO "Event_p20261120" SELECT * FROM moved;
ALTER TABLE "Event" ATTACH PARTITION "Event_p20261120" FOR VALUES FROM ('2026-11-20 00:00+00') TO ('2026-11-21 00:00+00');
COMMIT;
SQL
)
echo "a. period with rows: step 1 bulk move ${t[0]} ms (weak locks); burst: locks ${t[1]} + ${t[2]} ms, DELETE of rows arrived meanwhile (none) ${t[3]} ms, ATTACH ${t[4]} ms, COMMIT ${t[5]} ms"
future="\"createdAt\" >= '2026-12-01 00:00+00' AND \"createdAt\" < '2026-12-02 00:00+00'"
attach_future='ALTER TABLE "Event" ATTACH PARTITION "Event_p20261201" FOR VALUES FROM ('"'"'2026-12-01 00:00+00'"'"') TO ('"'"'2026-12-02 00:00+00'"'"')'
mapfile -t t < <(q -v ON_ERROR_STOP=1 <<SQL | timed
BEGIN;
CREATE TABLE "Event_p20261201" $like, CHECK ($future));
LOCK "Event" IN SHARE MODE;
LOCK "Event_default" IN ACCESS EXCLUSIVE MODE;
\timing on
$attach_future;
\timing off
ROLLBACK;
\timing on
ALTER TABLE "Event_default" ADD CONSTRAINT not_p20261201 CHECK ("createdAt" < '2026-12-01 00:00+00' OR "createdAt" >= '2026-12-02 00:00+00') NOT VALID;
ALTER TABLE "Event_default" VALIDATE CONSTRAINT not_p20261201;
\timing off
BEGIN;
CREATE TABLE "Event_p20261201" $like, CHECK ($future));
LOCK "Event" IN SHARE MODE;
LOCK "Event_default" IN ACCESS EXCLUSIVE MODE;
\timing on
$attach_future;
ALTER TABLE "Event_default" DROP CONSTRAINT not_p20261201;
\timing off
COMMIT;
SQL
)
echo "b. empty future period: ATTACH ${t[0]} ms; with a validated CHECK on the default: ADD ... NOT VALID ${t[1]} ms (ACCESS EXCLUSIVE on the default), VALIDATE ${t[2]} ms (SHARE UPDATE EXCLUSIVE), then ATTACH ${t[3]} ms, DROP CONSTRAINT ${t[4]} ms"
