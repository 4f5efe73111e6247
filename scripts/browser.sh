#!/usr/bin/env bash
# Installs what the board's browser tests drive (cmd/quotehub/board_test.go):
# Debian's chromium, run headless, and a font with Korean glyphs so that the
# screenshots show the catalogue's Korean names. Idempotent; safe to run often.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

say() { echo "browser: $*"; }

if command -v chromium >/dev/null; then
  say "chromium is installed"
else
  say "installing chromium"
  apt_install chromium
fi

# Any font with Korean glyphs will do; Nanum is the smallest in Debian.
if [ -n "$(fc-list :lang=ko 2>/dev/null)" ]; then
  say "a Korean font is installed"
else
  say "installing fonts-nanum"
  apt_install fonts-nanum
fi
