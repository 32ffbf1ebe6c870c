#!/usr/bin/env bash
# scripts/test.sh — the whole test suite in one command.
#
# Installs missing Debian packages (as root), builds and installs the
# extension, starts a throwaway cluster as an unprivileged user, then runs
#   1. pg_regress   (sql/ + expected/, deterministic through as_of)
#   2. pgTAP        (test/pgtap/*.sql through pg_prove)
#   3. integration  (test/integration/*.sh: concurrent sessions, servers)
# and ends with one line "N passed, N failed".  Exit status 0 only when
# nothing failed.  MC_ONLY=regress|pgtap|integration runs one part.
set -u
cd "$(dirname "$0")/.."
. scripts/lib.sh

passed=0
failed=0
count() { passed=$((passed + $1)); failed=$((failed + $2)); }

install_dependencies || { echo "0 passed, 1 failed"; exit 1; }
if ! build_and_install; then
    echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi
mkdir -p "$MC_RUN"
PORT=${MC_TEST_PORT:-55432}
cluster_start test "$PORT"
cluster_env test "$PORT"
trap 'cluster_stop test' EXIT
only=${MC_ONLY:-all}

if [ "$only" = all ] || [ "$only" = regress ]; then
    echo "== pg_regress"
    make -s installcheck >"$MC_RUN/regress.log" 2>&1
    grep -E '^(ok|not ok|test |     )' "$MC_RUN/regress.log" | grep -E ' (ok|FAILED|failed)' | sed 's/^/  /'
    p=$(grep -cE '^(test |     |ok ).* ok( |$)' "$MC_RUN/regress.log" || true)
    f=$(grep -cE '(FAILED|^not ok)' "$MC_RUN/regress.log" || true)
    if [ "$p" = 0 ] && [ "$f" = 0 ]; then f=1; cat "$MC_RUN/regress.log"; fi
    [ -f regression.diffs ] && head -n 200 regression.diffs
    count "$p" "$f"
fi

if [ "$only" = all ] || [ "$only" = pgtap ]; then
    echo "== pgTAP"
    PGOPTIONS="-c client_min_messages=warning" psql -q -d postgres -c "DROP DATABASE IF EXISTS mc_tap" -c "CREATE DATABASE mc_tap" >/dev/null
    psql -q -d mc_tap -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION matter_capacity" >/dev/null
    pg_prove -v -d mc_tap test/pgtap/*.sql >"$MC_RUN/pgtap.log" 2>&1
    grep -E '^(not ok|test/)' "$MC_RUN/pgtap.log" | sed 's/^/  /'
    p=$(grep -cE '^ *ok [0-9]' "$MC_RUN/pgtap.log" || true)
    f=$(grep -cE '^ *not ok [0-9]' "$MC_RUN/pgtap.log" || true)
    # a file that died before its plan counts as a failure
    bad=$(grep -cE 'Dubious|Bad plan|Parse errors' "$MC_RUN/pgtap.log" || true)
    if [ "$bad" != 0 ]; then grep -B5 -E 'Dubious|Bad plan|Parse errors' "$MC_RUN/pgtap.log"; fi
    count "$p" $((f + bad))
fi

if [ "$only" = all ] || [ "$only" = integration ]; then
    echo "== integration"
    for t in test/integration/*.sh; do
        log="$MC_RUN/$(basename "$t" .sh).log"
        bash "$t" >"$log" 2>&1
        rc=$?
        grep -E '^(ok|not ok|#)' "$log" | sed "s|^|  $(basename "$t"): |"
        p=$(grep -c '^ok' "$log" || true)
        f=$(grep -c '^not ok' "$log" || true)
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
            f=1; echo "  $(basename "$t"): exited $rc"; tail -n 20 "$log"
        fi
        count "$p" "$f"
    done
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
