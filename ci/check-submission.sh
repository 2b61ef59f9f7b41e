#!/usr/bin/env bash
# Audit a contributor's results directory the way CI audits the committed leaderboard:
#   ci/check-submission.sh DIR [--reference leaderboard/<folder>] [--rerun N]
# Exit 0 clean, 1 findings (regression or tampering; each names file, field, expected, found),
# 2 unusable input.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: ci/check-submission.sh DIR [check flags]" >&2; exit 2; }
cargo build --release --quiet
exec target/release/mmsr-bench check "$@"
