#!/usr/bin/env bash
# The README's first command: bootstrap, then the lifecycle demo on a scratch store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec pnpm exec tsx scripts/demo.ts "$@"
