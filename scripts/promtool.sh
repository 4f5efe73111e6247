#!/usr/bin/env bash
# Installs promtool (Debian's prometheus package ships it), which the tests
# of deploy/ use to check and unit-test the alert rules. Idempotent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if command -v promtool >/dev/null; then
  echo "promtool: $(promtool --version 2>&1 | head -1)"
else
  echo "promtool: installing Debian's prometheus package"
  apt_install --no-install-recommends prometheus
fi
