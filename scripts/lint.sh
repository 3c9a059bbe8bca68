#!/usr/bin/env bash
# The boundaries as checks, not advice: formatter and linter (biome), the dependency rules
# (dependency-cruiser), no unused file, export or dependency (knip), and the type check.
# Runs every check, then fails if any failed, each with its time. scripts/test.sh runs it first.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()
for check in format deps unused types; do
  start=$(date +%s%N)
  if pnpm run --silent "lint:$check"; then status=ok; else status=FAILED; failed+=("$check"); fi
  echo "lint:$check $status ($(( ($(date +%s%N) - start) / 1000000 )) ms)" >&2
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "lint: failed: ${failed[*]} (pnpm run lint:<name> to rerun one)" >&2
  exit 1
fi
