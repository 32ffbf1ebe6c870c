#!/usr/bin/env bash
# pg_cron interop: a job "SELECT capacity_rollover()" scheduled every minute
# really runs (cron.job_run_details) and really creates partitions for the
# current time: nothing here passes as_of.  Waits for up to ~2 minutes.
# Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
: "${PGHOST:?run through scripts/test.sh}"
DB=postgres          # cron.database_name of the test cluster
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }

q <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION IF NOT EXISTS matter_capacity;
DROP TABLE IF EXISTS cron_event;
CREATE TABLE cron_event ("orgId" int NOT NULL, "createdAt" timestamptz NOT NULL) PARTITION BY RANGE ("createdAt");
SELECT capacity_manage('cron_event', 'createdAt', 'day', 'orgId', 2, premake => 2);
SQL
before=$(q -c "SELECT count(*) FROM capacity_partitions WHERE table_name = 'cron_event'::regclass")
job=$(q -c "SELECT cron.schedule('matter_capacity rollover', '* * * * *', \$\$SELECT count(*) FROM capacity_rollover()\$\$)")
echo "# scheduled job $job at $(date -u +%H:%M:%S); waiting for its first run"
status=""
for _ in $(seq 1 130); do
    status=$(q -c "SELECT status FROM cron.job_run_details WHERE jobid = $job AND status IN ('succeeded', 'failed') LIMIT 1")
    [ -n "$status" ] && break
    sleep 1
done
q -c "SELECT jobid, status, return_message, end_time - start_time AS took FROM cron.job_run_details WHERE jobid = $job" | sed 's/^/# /'
[ "$status" = succeeded ]; ok $? "pg_cron ran the rollover job (status: ${status:-none})"
after=$(q -c "SELECT count(*) FROM capacity_partitions WHERE table_name = 'cron_event'::regclass")
[ "$before" = 0 ] && [ "$after" = 10 ]; ok $? "the scheduled run created default + 3 days x (1 + 2 leaves) for today ($before -> $after)"
today=$(q -c "SELECT count(*) FROM capacity_partitions WHERE table_name = 'cron_event'::regclass AND level = 1 AND range_from <= now() AND range_to > now()")
[ "$today" = 1 ]; ok $? "the partition for the real current day exists"
logged=$(q -c "SELECT count(*) FROM capacity_rollover_log WHERE table_name = 'public.cron_event' AND action = 'created'")
[ "$logged" -ge 4 ]; ok $? "the cron run's actions are in capacity_rollover_log ($logged)"
q -c "SELECT cron.unschedule($job)" >/dev/null
q -c "DROP TABLE cron_event" >/dev/null 2>&1
