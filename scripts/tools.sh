#!/usr/bin/env bash
# Installs the static-analysis tools of `make lint` into .tools/ from the Go
# module proxy, at pinned versions: golangci-lint, govulncheck, and the
# vulnerability database govulncheck reads, built from the
# golang.org/x/vulndb module (the OSV reports it ships) by its own indexdb,
# since the live database is not reachable from every machine. Idempotent:
# a tool at the pinned version is not built again. Prints the tools' bin
# directory and database directory, one a line.
set -euo pipefail
cd "$(dirname "$0")/.."

GOLANGCI_LINT_VERSION=v2.15.0
GOVULNCHECK_VERSION=v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

root=$PWD/.tools
bin=$root/bin
mkdir -p "$bin"
say() { echo "tools: $*" >&2; }

install() { # name module version
  local stamp=$root/$1.version
  if [ -x "$bin/$1" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$3" ]; then return; fi
  say "building $1 $3 (once; a few minutes for golangci-lint)"
  GOBIN=$bin GOFLAGS=-mod=mod go install "$2@$3"
  echo "$3" >"$stamp"
}

install golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_LINT_VERSION"
install govulncheck golang.org/x/vuln/cmd/govulncheck "$GOVULNCHECK_VERSION"
install indexdb golang.org/x/vulndb/cmd/indexdb "$VULNDB_VERSION"

db=$root/vulndb-$VULNDB_VERSION
if [ ! -f "$db/index/db.json" ]; then
  say "building the vulnerability database $VULNDB_VERSION"
  src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$db.tmp"
  "$bin/indexdb" -vulns "$src/data/osv" -out "$db.tmp"
  mv "$db.tmp" "$db"
fi
echo "$bin"
echo "$db"
