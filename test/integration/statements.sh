#!/usr/bin/env bash
# statement_top_share from pg_stat_statements, on a server with
# shared_preload_libraries = 'pg_stat_statements': the top statement's
# share of execution time between two samples, labelled with its queryid;
# no sample (and a note in capacity_indicator_status saying why) without
# the extension, on the first sample, after a reset, and when the library
# is not preloaded.  Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
P=55461
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -h "$(cluster_dir statements)" -p $P -U postgres -d postgres "$@"; }
trap 'cluster_stop statements' EXIT
cluster_start statements $P "shared_preload_libraries = 'pg_stat_statements'"

note() { q -c "SELECT coalesce(note, '') FROM capacity_indicator_status WHERE indicator = 'statement_top_share'"; }
samples() { q -c "SELECT count(*) FROM capacity_sample WHERE indicator = 'statement_top_share'"; }

q -c "SET client_min_messages = warning" -c "CREATE EXTENSION matter_capacity" >/dev/null
q -c "SELECT capacity_sample_now()" >/dev/null
n=$(note); echo "# $n"
[ "$(samples)" = 0 ] && echo "$n" | grep -q 'pg_stat_statements is not installed in this database'
ok $? "without the pg_stat_statements extension: no sample, the note says so"

q -c "CREATE EXTENSION pg_stat_statements" >/dev/null
q -c "SELECT capacity_sample_now()" >/dev/null
n=$(note); echo "# $n"
[ "$(samples)" = 0 ] && echo "$n" | grep -q 'first sample'
ok $? "first sample after installing it: no share yet (it is measured between two samples)"

# 1.0 s in one statement shape, 0.1 s in another
{
    for _ in $(seq 20); do echo "SELECT pg_sleep(0.05);"; done
    for _ in $(seq 10); do echo "SELECT 1 FROM pg_sleep(0.01);"; done
} | q >/dev/null
q -c "SELECT capacity_sample_now()" >/dev/null
share=$(q -c "SELECT round(value::numeric, 3) FROM capacity_latest WHERE indicator = 'statement_top_share'")
qid=$(q -c "SELECT labels->>'queryid' FROM capacity_latest WHERE indicator = 'statement_top_share'")
top=$(q -c "SELECT queryid::text FROM pg_stat_statements WHERE query = 'SELECT pg_sleep(\$1)'")
exp=$(q -c "SELECT round((SELECT sum(total_exec_time) FROM pg_stat_statements WHERE query = 'SELECT pg_sleep(\$1)')::numeric / 1000, 3)")
echo "# share $share, queryid $qid (pg_sleep(\$1): $top, ${exp} s), note '$(note)'"
[ -n "$qid" ] && [ "$qid" = "$top" ]
ok $? "the top statement is the one that took 1 s (queryid label $qid)"
awk -v s="$share" 'BEGIN { exit !(s >= 0.70 && s <= 0.95) }'
ok $? "its share of execution time between the two samples is about 1.0 / 1.1 s, less the sampler's own time ($share, bound 0.70..0.95)"
[ "$(samples)" = 1 ] && [ -z "$(note)" ]; ok $? "one sample written, no note"

# only the new interval counts: now the other shape takes most
{
    for _ in $(seq 20); do echo "SELECT 1 FROM pg_sleep(0.03);"; done
    echo "SELECT pg_sleep(0.05);"
} | q >/dev/null
q -c "SELECT capacity_sample_now()" >/dev/null
qid2=$(q -c "SELECT labels->>'queryid' FROM capacity_latest_sample WHERE indicator = 'statement_top_share' ORDER BY sampled_at DESC LIMIT 1")
other=$(q -c "SELECT queryid::text FROM pg_stat_statements WHERE query = 'SELECT \$1 FROM pg_sleep(\$2)'")
share2=$(q -c "SELECT round(value::numeric, 3) FROM capacity_latest WHERE indicator = 'statement_top_share' AND labels->>'queryid' = '$qid2'")
echo "# second interval: top $qid2 (SELECT \$1 FROM pg_sleep(\$2): $other), share $share2"
[ "$qid2" = "$other" ] && awk -v s="$share2" 'BEGIN { exit !(s >= 0.70 && s <= 0.95) }'
ok $? "the next share is of the time since the previous sample only ($share2 for the 0.6 s statement)"

q -c "SELECT pg_stat_statements_reset()" >/dev/null
q -c "SELECT capacity_sample_now()" >/dev/null
n=$(note); echo "# $n"
[ "$(samples)" = 2 ] && echo "$n" | grep -q 'reset'
ok $? "after pg_stat_statements_reset(): no sample for that interval, the note says why"

# installed but not preloaded
as_server_user "$PGBIN/pg_ctl" -D "$(cluster_dir statements)/data" -l "$(cluster_dir statements)/server.log" \
    -o "-c shared_preload_libraries=''" -w restart >/dev/null
q -c "SELECT capacity_sample_now()" >/dev/null 2>&1
n=$(note); echo "# $n"
[ "$(samples)" = 2 ] && echo "$n" | grep -q 'not loaded'
ok $? "installed but not in shared_preload_libraries: no sample, no error, the note says so"
