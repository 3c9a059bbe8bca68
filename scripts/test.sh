#!/usr/bin/env bash
# The README's second command: bootstrap, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec pnpm exec vitest run "$@"
