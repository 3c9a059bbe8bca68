#!/usr/bin/env bash
# Builds the Go crypto/x509 verifier offline: it has no dependencies beyond the standard library.
set -euo pipefail
cd "$(dirname "$0")/goverify"
if [ ! -x goverify ] || [ main.go -nt goverify ]; then
  GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local go build -o goverify .
fi
# The batch verifier the model-based test uses (many pairs, one process).
cd ../gobatch
if [ ! -x gobatch ] || [ main.go -nt gobatch ]; then
  GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local go build -o gobatch .
fi
