#!/usr/bin/env bash
# Runs `mmsr-bench check` on every committed submission under leaderboard/ (every folder with
# a runs/ directory, and every scaling study: a folder with scaling.json, whose analysis and
# report are re-derived from its measurements); part of the test command, so a committed result
# that no longer checks fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
status=0
for dir in leaderboard/*/; do
  [ -d "$dir/runs" ] || [ -f "$dir/scaling.json" ] || continue
  target/release/mmsr-bench check "${dir%/}" || status=1
done
exit $status
