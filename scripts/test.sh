#!/usr/bin/env bash
# The README's second command: bootstrap, the lint checks, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/lint.sh   # formatter, linter, dependency rules, unused code, types: a violation fails before the tests run
exec pnpm exec vitest run "$@"
