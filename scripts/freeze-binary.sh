#!/usr/bin/env bash
# Copies a release build of vaeas-dist out of .build for a long experiment, so that rebuilds during the run do not
# touch it, with the commit it was built from beside it (DIR/vaeas-dist.commit): a copy cannot find its checkout,
# so the binary reads the file (`--version`, run.jsonl), and the study runner records it in each run's done.json.
#
#   bash scripts/freeze-binary.sh DIR        # then: VAEAS_BIN=DIR/vaeas-dist python3 scripts/study.py …
#
# Refuses when the sources differ from the commit (Sources/, Package.swift, Package.resolved), since the commit
# would then not name what was built.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:?usage: bash scripts/freeze-binary.sh DIR}"
if [ -n "$(git status --porcelain -- Sources Package.swift Package.resolved)" ]; then
    echo "freeze-binary.sh: Sources/ or Package.* differ from HEAD; commit them first, so that the commit names the build:" >&2
    git status --short -- Sources Package.swift Package.resolved >&2
    exit 1
fi
swift build -c release >&2
mkdir -p "$dir"
cp .build/release/vaeas-dist "$dir/vaeas-dist.tmp"
mv -f "$dir/vaeas-dist.tmp" "$dir/vaeas-dist"
git rev-parse HEAD > "$dir/vaeas-dist.commit"
echo "$dir/vaeas-dist (commit $(cut -c1-12 "$dir/vaeas-dist.commit"))"
