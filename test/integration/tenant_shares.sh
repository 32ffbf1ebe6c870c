#!/usr/bin/env bash
# Tenant shares never stall on the application's locks and keep none:
# a session holding a leaf of the current period exclusively makes the
# sampler skip that table within matter_capacity.lock_timeout (named in
# capacity_indicator_status.note) while other tables are sampled; once it
# commits the table is sampled again; and a sampler left open in its
# transaction holds no lock on the leaves it read.  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
P=55462
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -h "$(cluster_dir shares)" -p $P -U postgres -d postgres "$@"; }
trap 'kill $holder 2>/dev/null; cluster_stop shares' EXIT
cluster_start shares $P

q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE a (org text NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE b (org text NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('a', 'at', 'week', 'org', 2, premake => 1);
SELECT capacity_manage('b', 'at', 'week', 'org', 2, premake => 1);
SELECT count(*) FROM capacity_rollover(as_of => '2026-11-25 00:00+00');
INSERT INTO a SELECT 'org' || g % 4, '2026-11-24 00:00+00' FROM generate_series(1, 1000) g;
INSERT INTO b SELECT 'org' || g % 5, '2026-11-24 00:00+00' FROM generate_series(1, 1000) g;
SQL
leaf=$(q -c "SELECT partition_name FROM capacity_partitions WHERE table_name = 'a'::regclass AND level = 2 AND range_from = '2026-11-23 00:00+00' ORDER BY 1 LIMIT 1")
q -c "BEGIN" -c "LOCK TABLE $leaf IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(8)" -c "COMMIT" >/dev/null &
holder=$!
sleep 1
start=$(date +%s%N)
q -c "SELECT capacity_sample_now('2026-11-25 00:00+00')" >/dev/null 2>&1
ms=$(( ($(date +%s%N) - start) / 1000000 ))
n=$(q -c "SELECT note FROM capacity_indicator_status WHERE indicator = 'tenant_top_share'")
echo "# $leaf held exclusively: sampling took $ms ms; note: $n"
[ "$ms" -lt 3000 ] && echo "$n" | grep -q 'public.a skipped: lock not available within 100 ms'
ok $? "a table whose leaf is held exclusively is skipped within the lock timeout ($ms ms), and named"
got=$(q -c "SELECT string_agg(labels->>'table', ',' ORDER BY labels->>'table') FROM capacity_latest WHERE indicator = 'tenant_top_share'")
[ "$got" = "public.b" ]; ok $? "the other table is sampled meanwhile (tables with a share: $got)"
wait $holder
q -c "SELECT capacity_sample_now('2026-11-25 00:05+00')" >/dev/null
got=$(q -c "SELECT string_agg((labels->>'table') || '=' || value, ',' ORDER BY labels->>'table') FROM capacity_latest WHERE indicator = 'tenant_top_share'")
n=$(q -c "SELECT coalesce(note, '') FROM capacity_indicator_status WHERE indicator = 'tenant_top_share'")
[ "$got" = "public.a=0.25,public.b=0.2" ] && [ -z "$n" ]; ok $? "once the lock is released both are sampled, exactly ($got)"
held=$(q -c "BEGIN" -c "SELECT capacity_sample_now('2026-11-25 00:10+00') >= 0" \
         -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
              WHERE l.pid = pg_backend_pid() AND c.relname ~ '^[ab]_p2026w4[78]'" -c "COMMIT" | tail -n 1)
[ "$held" = 0 ]; ok $? "a sampler still in its transaction holds no lock on the leaves it read ($held)"
