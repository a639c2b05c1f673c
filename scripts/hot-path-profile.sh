#!/usr/bin/env bash
# Instructions per request over a bare service for each hot path, counted by callgrind
# (deterministic: the same build gives the same counts on any load). Prints one row per path:
# all instructions per request, those over bare, those of them in SHA-256 blocks, and the rest
# ("guarded", what scripts/cost-guard.sh compares with its budgets).
#
#   bash scripts/hot-path-profile.sh [REQUESTS]      # default 20000
#
# Needs valgrind (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
rows=(bare api_key api_key_keyed jwt_uncached jwt_cached rate_limit rate_limit_fields floor_fields full)

if ! command -v valgrind >/dev/null 2>&1; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi

cargo build --quiet --release --all-features --example hot_path_profile
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release/examples/hot_path_profile"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Prints "<all instructions> <instructions in SHA-256 block functions>" for one row. Valgrind's
# CPU has no SHA extensions, so SHA-256 runs its portable code there (several thousand
# instructions a token, far more than natively): those blocks are counted apart, and the
# guarded figure leaves them out.
count() {
  valgrind --tool=callgrind --toggle-collect='*profiled_calls*' --callgrind-out-file="$out/$1" \
    "$bin" "$1" "$n" >/dev/null 2>&1
  local total sha
  total=$(callgrind_annotate --inclusive=no "$out/$1" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
  sha=$(callgrind_annotate --inclusive=no --threshold=100 "$out/$1" 2>/dev/null |
    grep -E 'compress256|sha256_block_data_order' | awk '{ gsub(",", "", $1); s += $1 } END { print s + 0 }')
  echo "$total $sha"
}

read -r bare bare_sha <<<"$(count bare)"
printf '%-18s %12s %14s %10s %10s\n' row 'instr/req' 'over bare' 'sha-256' 'guarded'
for row in "${rows[@]}"; do
  if [ "$row" = bare ]; then total=$bare sha=$bare_sha; else read -r total sha <<<"$(count "$row")"; fi
  over=$(((total - bare) / n))
  sha_over=$(((sha - bare_sha) / n))
  printf '%-18s %12d %14d %10d %10d\n' "$row" $((total / n)) "$over" "$sha_over" $((over - sha_over))
done
