#!/usr/bin/env bash
# bench/default_backfill.sh — a default partition of 5,000,000 rows (three
# weeks without a rollover: 18 days of rows, 20 daily periods to make)
# emptied by CALL capacity_rollover_proc() while an application writes (a
# current row) and reads (the last hour of one tenant) on two connections,
# both ways side by side in one run:
#   baseline: the rescue, period by period (test/integration/default_rescue.sh:
#     its table has no primary key, so the backfill path refuses it); each
#     period's ATTACH scans the whole default partition while writers wait;
#   backfill: the default partition becomes a historical partition and the
#     conversion's backfill moves its rows (test/integration/default_backfill.sh,
#     a primary key; matter_capacity.rescue_backfill_rows 100,000).
# Prints each run's measurements and the ratios of the application's worst
# transaction and of the procedure's time.  Usage: bench/default_backfill.sh [ROWS]
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROWS=${1:-5000000}
install_dependencies
build_and_install
mkdir -p "$MC_RUN"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
base=$(MC_RESCUE_ROWS=$ROWS MC_RESCUE_MONITOR_PAUSE=0.5 bash test/integration/default_rescue.sh | grep -v '^# call\|function:')
echo "== baseline: the rescue, period by period"
echo "$base"
new=$(MC_BACKFILL_ROWS=$ROWS MC_BACKFILL_MONITOR_PAUSE=0.5 bash test/integration/default_backfill.sh | grep -v 'refused:\|worker')
echo "== the backfill"
echo "$new"
bw=$(echo "$base" | sed -n 's/.*worst \([0-9]*\) ms.*/\1/p')
nw=$(echo "$new" | sed -n 's/.*worst \([0-9]*\) ms.*/\1/p')
bt=$(echo "$base" | sed -n 's/.*created in \([0-9]*\) ms.*/\1/p')
nt=$(echo "$new" | sed -n 's/^# procedure: \([0-9]*\) ms.*/\1/p')
echo "worst application transaction: baseline $bw ms, backfill $nw ms: $(awk -v a="$bw" -v b="$nw" 'BEGIN{printf "%.1f", a/b}')x shorter"
echo "procedure: baseline $bt ms, backfill $nt ms: $(awk -v a="$bt" -v b="$nt" 'BEGIN{printf "%.2f", a/b}')x"
