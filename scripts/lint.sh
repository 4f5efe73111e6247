#!/usr/bin/env bash
# make lint: golangci-lint (.golangci.yml) and govulncheck, installed by
# scripts/tools.sh. govulncheck fails on any vulnerability the code calls
# that .govulncheck-allow does not list with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
{ read -r bin; read -r db; } < <(bash scripts/tools.sh)

echo "lint: golangci-lint"
# --allow-parallel-runners: without it a second lint on the machine (another
# checkout's make test) makes this one fail at once instead of linting.
"$bin/golangci-lint" run --allow-parallel-runners ./...

echo "lint: govulncheck"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
"$bin/govulncheck" -db "file://$db" ./... >"$out" 2>&1
rc=$?
set -e
if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then cat "$out"; exit "$rc"; fi
found=$(grep -oE '^Vulnerability #[0-9]+: GO-[0-9]+-[0-9]+' "$out" | awk '{print $3}' | sort -u)
allowed=$(grep -oE '^GO-[0-9]+-[0-9]+' .govulncheck-allow | sort -u)
new=$(comm -23 <(echo "$found" | sed '/^$/d') <(echo "$allowed"))
if [ -n "$new" ]; then
  cat "$out"
  echo "lint: vulnerabilities the code calls, not in .govulncheck-allow:" $new
  exit 1
fi
stale=$(comm -13 <(echo "$found" | sed '/^$/d') <(echo "$allowed"))
[ -z "$stale" ] || echo "lint: .govulncheck-allow lists what no longer applies (remove):" $stale
echo "lint: govulncheck: $(echo "$found" | sed '/^$/d' | wc -l) called vulnerabilities, all in .govulncheck-allow"
