#!/usr/bin/env bash
# bench/default_rescue.sh — emptying a default partition of 5,000,000 rows
# (three weeks without a rollover: 18 days of rows, 20 daily periods to
# make) with CALL capacity_rollover_proc() while an application writes
# (INSERT of a current row) and reads (the last hour of one tenant) on two
# connections.  Runs test/integration/default_rescue.sh with ROWS rows and
# prints its measurements: the procedure's time, the application's worst
# transaction (and the five slowest), whether every look saw all old rows
# and no row was lost.  Usage: bench/default_rescue.sh [ROWS]
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROWS=${1:-5000000}
install_dependencies
build_and_install
mkdir -p "$MC_RUN"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
MC_RESCUE_ROWS=$ROWS MC_RESCUE_MONITOR_PAUSE=0.5 bash test/integration/default_rescue.sh | grep -v '^# call\|function:'
