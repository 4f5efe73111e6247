#!/usr/bin/env bash
# soak: connection churn, a steady fan-out and HTTP reads against one node
# at once, for SOAK_FOR (default 10m), sampling the node's RSS, goroutines
# and open fds every 10 s. Passes when RSS and goroutines stay flat within
# 5 % after the warm-up and fds and goroutines return to their baseline
# after the load; the figures are appended to docs/BENCHMARKS.md.
#   bash scripts/soak.sh            # 10 minutes
#   SOAK_FOR=1h bash scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
exec go run ./cmd/quotebench -size full -only soak -soak-for "${SOAK_FOR:-10m}"
