#!/usr/bin/env bash
# Runs `mmsr-bench check` on every committed submission under leaderboard/ (every folder with
# a runs/ directory); part of the test command, so a committed result that no longer checks
# fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
status=0
for dir in leaderboard/*/; do
  [ -d "$dir/runs" ] || continue
  target/release/mmsr-bench check "${dir%/}" || status=1
done
exit $status
