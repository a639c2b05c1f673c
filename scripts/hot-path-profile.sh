#!/usr/bin/env bash
# Instructions per request over a bare service for each hot path, counted by callgrind
# (deterministic: the same build gives the same counts on any load). Prints one row per path.
#
#   bash scripts/hot-path-profile.sh [REQUESTS]      # default 20000
#
# Needs valgrind (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
rows=(bare api_key api_key_keyed jwt_uncached jwt_cached rate_limit rate_limit_fields full)

if ! command -v valgrind >/dev/null 2>&1; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi

cargo build --quiet --release --all-features --example hot_path_profile
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release/examples/hot_path_profile"

count() {
  valgrind --tool=callgrind --toggle-collect='*profiled_calls*' --callgrind-out-file=/dev/null \
    "$bin" "$1" "$n" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

bare=$(count bare)
printf '%-18s %12s %14s\n' row 'instr/req' 'over bare'
for row in "${rows[@]}"; do
  total=$([ "$row" = bare ] && echo "$bare" || count "$row")
  printf '%-18s %12d %14d\n' "$row" $((total / n)) $(((total - bare) / n))
done
