#!/usr/bin/env bash
# Installs the independent WebSocket clients the tests talk to
# (cmd/quotehub/testdata/interop): Python's websockets for the system
# python3 (Debian's python3-websockets) and Node's ws (from the npm
# registry, pinned by package-lock.json), with Node and npm from Debian if
# they are missing. Idempotent; safe to run often.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
dir=cmd/quotehub/testdata/interop

say() { echo "clients: $*"; }

if /usr/bin/python3 -c 'import websockets' 2>/dev/null; then
  say "python3-websockets is installed"
else
  say "installing python3-websockets"
  apt_install python3 python3-websockets
fi

if command -v node >/dev/null && command -v npm >/dev/null; then
  say "node $(node --version) and npm are installed"
else
  say "installing nodejs and npm"
  command -v node >/dev/null || apt_install nodejs
  command -v npm >/dev/null || apt_install npm
fi

if node -e "require('./$dir/node_modules/ws')" 2>/dev/null; then
  say "ws is installed in $dir"
else
  say "installing ws in $dir"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
fi
