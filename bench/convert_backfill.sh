#!/usr/bin/env bash
# bench/convert_backfill.sh [ROWS] — backfill speed of the online
# conversion: ROWS (default 2M) rows over ten weeks, weekly periods with 4
# hash leaves, capacity_convert then capacity_convert_backfill (batches of
# 20,000 rows, idle server).  Baseline: plain PostgreSQL's offline way, one
# INSERT INTO a partitioned copy SELECT * FROM the table (which holds the
# table for the whole copy).  Prints rows/s of both and their ratio.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROWS=${1:-2000000}
PORT=${MC_BENCH_PORT:-55451}
install_dependencies
build_and_install
mkdir -p "$MC_RUN"
cluster_start convert_bench "$PORT" "shared_buffers = 1GB" "max_wal_size = 4GB"
cluster_env convert_bench "$PORT"
[ -n "${MC_BENCH_KEEP:-}" ] || trap "cluster_stop convert_bench" EXIT
export PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

q <<SQL
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" (id bigint GENERATED ALWAYS AS IDENTITY, "orgId" text NOT NULL,
    "createdAt" timestamptz NOT NULL, payload text, PRIMARY KEY (id, "createdAt", "orgId"));
CREATE INDEX ON "Event" ("orgId", "createdAt");
INSERT INTO "Event" ("orgId", "createdAt", payload)
SELECT 'org' || (g % 100), now() - (g % 100800) * interval '1 minute' - interval '1 minute', md5(g::text)
  FROM generate_series(1, $ROWS) g;
CREATE TABLE plain (LIKE "Event" INCLUDING ALL);
INSERT INTO plain OVERRIDING SYSTEM VALUE SELECT * FROM "Event";
VACUUM ANALYZE;
SQL

# baseline: the offline copy into a partitioned table of the same layout
q <<'SQL'
CREATE TABLE plain_p (LIKE "Event" INCLUDING DEFAULTS) PARTITION BY RANGE ("createdAt");
ALTER TABLE plain_p ADD PRIMARY KEY (id, "createdAt", "orgId");
CREATE INDEX ON plain_p ("orgId", "createdAt");
SELECT capacity_manage('plain_p', 'createdAt', 'week', 'orgId', 4, premake => 1);
SELECT count(*) FROM capacity_rollover('plain_p');
DO $$
DECLARE w timestamptz := date_trunc('week', now()) - interval '11 weeks';
BEGIN
    WHILE w < date_trunc('week', now()) LOOP
        PERFORM count(*) FROM capacity_rollover('plain_p', as_of => w);
        w := w + interval '1 week';
    END LOOP;
END $$;
SQL
t0=$(date +%s%N)
q -c "INSERT INTO plain_p OVERRIDING SYSTEM VALUE SELECT * FROM plain"
plain_ms=$(ms "$t0")

t0=$(date +%s%N)
q -c "CALL capacity_convert('\"Event\"', 'createdAt', 'week', 'orgId', 4)" 2>/dev/null
convert_ms=$(ms "$t0")
t0=$(date +%s%N)
q -c "CALL capacity_convert_backfill('\"Event\"', 20000)" 2>/dev/null
backfill_ms=$(ms "$t0")
swap=$(q -c "SELECT round(convert_swap_ms::numeric, 1) || ' ms / ' || round(backfill_swap_ms::numeric, 1) || ' ms' FROM capacity_conversions")

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(q -c 'SHOW server_version'), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
echo "rows: $ROWS over 10 weeks, weekly periods x 4 hash leaves, 2 indexes"
echo "capacity_convert: $convert_ms ms (locks held in the swaps: $swap)"
awk -v r="$ROWS" -v b="$backfill_ms" -v p="$plain_ms" 'BEGIN {
    printf "capacity_convert_backfill: %d ms, %.0f rows/s (online, batches of 20000)\n", b, r / (b / 1000)
    printf "plain INSERT ... SELECT into a partitioned copy: %d ms, %.0f rows/s (offline)\n", p, r / (p / 1000)
    printf "ratio (online / offline throughput): %.2f\n", p / b }'
