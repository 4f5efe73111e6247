#!/usr/bin/env bash
# Installs what the tests of deploy/ use to check the production stack's
# files: promtool (Debian's prometheus package ships it), which checks and
# unit-tests the alert rules, and docker-compose (Debian's, 1.29), whose
# `config` validates docker-compose.yml without a Docker engine.
# Idempotent; safe to run often.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if command -v promtool >/dev/null; then
  echo "deploy-tools: $(promtool --version 2>&1 | head -1)"
else
  echo "deploy-tools: installing Debian's prometheus package (for promtool)"
  apt_install --no-install-recommends prometheus
fi
if command -v docker-compose >/dev/null; then
  echo "deploy-tools: $(docker-compose version --short 2>/dev/null || echo docker-compose)"
else
  echo "deploy-tools: installing Debian's docker-compose (for docker-compose config)"
  apt_install --no-install-recommends docker-compose
fi
