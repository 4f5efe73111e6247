#!/usr/bin/env bash
# Runs every benchmark scenario at full size (about half an hour on a
# 2-core machine) and appends the results to docs/BENCHMARKS.md; extra
# arguments go to quotebench (e.g. -only fanout-ws,idle).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh >/dev/null   # Redis for the cluster scenario
exec go run ./cmd/quotebench -size full "$@"
