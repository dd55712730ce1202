#!/usr/bin/env bash
# The test command: set up (packages, Python modules, release build), then the
# Python tools' tests (pytest, tools/tests) and every Swift test target in
# release mode (the numerics are slow in debug; the tests do not use @testable,
# so release works).
#
#   bash scripts/test.sh [swift test arguments…]   e.g. --filter ConfigTests
#   VAEAS_SKIP_PYTEST=1 bash scripts/test.sh …     the Swift tests alone
#
# The integration tests launch `mpirun -n 3` on 2 cores, so oversubscription is
# allowed here through Open MPI's environment, as is running as root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh   # ends with `swift build -c release`

if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_rmaps_base_oversubscribe=1

if [ "${VAEAS_SKIP_PYTEST:-0}" != 1 ]; then
    printf 'test: python3 -m pytest -q tools/tests\n'
    python3 -m pytest -q -p no:cacheprovider tools/tests
fi

# A hang must not use up CI's time without a word: past VAEAS_TEST_TIMEOUT seconds (default 2700; the whole suite
# takes 5 to 8 minutes on 2 cores) the processes still running are printed, then every process of the suite's
# session (the test binary and what it started) is stopped, and the status is 124. Output is line-buffered (stdbuf),
# so the log shows the test that was running even when the run is stopped.
limit="${VAEAS_TEST_TIMEOUT:-2700}"
printf 'test: swift test -c release %s   (stopped after %s s)\n' "$*" "$limit"
setsid stdbuf -oL -eL swift test -c release "$@" &
suite=$!   # setsid: the suite's session id
(
    end=$((SECONDS + limit))
    while kill -0 "$suite" 2>/dev/null; do
        if [ "$SECONDS" -ge "$end" ]; then
            printf '\ntest: the suite is still running after %s s (VAEAS_TEST_TIMEOUT); its processes:\n' "$limit"
            ps -s "$suite" -o pid,ppid,stat,etime,args --forest | cut -c1-400
            touch "${TMPDIR:-/tmp}/vaeas-test-timeout.$suite"
            pkill -TERM -s "$suite"; sleep 20; pkill -KILL -s "$suite"
            break
        fi
        sleep 2
    done
) &
status=0
wait "$suite" || status=$?
wait
if [ -e "${TMPDIR:-/tmp}/vaeas-test-timeout.$suite" ]; then
    rm -f "${TMPDIR:-/tmp}/vaeas-test-timeout.$suite"
    printf 'test: stopped: the suite did not finish in %s s\n' "$limit"
    exit 124
fi
exit "$status"
