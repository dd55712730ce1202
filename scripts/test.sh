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

printf 'test: swift test -c release %s\n' "$*"
exec swift test -c release "$@"
