#!/usr/bin/env bash
# Fails when a hot path costs more instructions per request than its budget in
# scripts/cost-budgets.txt. Counts are callgrind's (deterministic for a given build, whatever
# the machine is doing), over a bare service and without SHA-256's blocks (see
# `scripts/hot-path-profile.sh`).
#
#   bash scripts/cost-guard.sh [REQUESTS]      # default 10000
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
budgets=scripts/cost-budgets.txt

measured=$(bash scripts/hot-path-profile.sh "$n")
echo "$measured"
failed=0
while read -r row budget _; do
  case "$row" in ''|'#'*) continue ;; esac
  count=$(awk -v r="$row" '$1 == r { print $5 }' <<<"$measured")
  if [ -z "$count" ]; then
    echo "cost guard: no measurement for row $row"; failed=1; continue
  fi
  if [ "$count" -gt "$budget" ]; then
    echo "cost guard: $row costs $count instructions per request over bare, budget $budget ($budgets)"
    failed=1
  else
    echo "cost guard: $row $count <= $budget"
  fi
done < "$budgets"
exit "$failed"
