#!/usr/bin/env bash
# End to end on a real Slurm (start one with ci/slurm/local-cluster.sh): plan a small matrix,
# run it as a job array with sbatch, merge, and require the merged summary's metrics to equal
# those of run-all on the same matrix.   ci/slurm/test-array.sh [BIN]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$(realpath "${1:-$root/target/release/mmsr-bench}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
matrix=(--models pop,items-only,gcn --seeds 1,2 --device cpu --set train.max_epochs=3
        --set model.items-only.dim=16 --set model.gcn.dim=16
        --set model.gcn.init_codes_from_centres=false)
start=$(date +%s)
# Follow the lines plan prints, from another directory: they must work anywhere and agree on
# where the results go (only --wait/--parsable/--output are added to the submit line).
printed="$("$bin" --results-dir slurm plan --out plan.jsonl "${matrix[@]}")"
echo "$printed"
cells=$(wc -l < plan.jsonl)
submit="$(sed -n 's/^submit: //p' <<<"$printed" | sed 's/   (.*$//')"
merge="$(sed -n 's/^then: *//p' <<<"$printed")"
status=0
job=$(cd / && eval "${submit/ sbatch / sbatch --parsable --wait --output=$work/slurm-%A_%a.out }") || status=$?
echo "array job ${job:-?}: $cells cells, sbatch --wait exit $status"
cat "$work"/slurm-*.out
[ "$status" = 0 ] || exit "$status"
(cd / && eval "$merge")
"$bin" -q --results-dir local run-all "${matrix[@]}" >/dev/null
python3 - <<'PY'
import json
def metrics(path):
    return {(r["dataset"], r["model"]): (sorted(r["seeds"]), r["test"]) for r in json.load(open(path))}
a, b = metrics("slurm/summary.json"), metrics("local/summary.json")
assert a == b, f"merged summary differs from run-all:\n{a}\n{b}"
print(f"merged summary of {len(a)} rows equals run-all's")
PY
"$bin" check slurm
echo "done in $(( $(date +%s) - start )) s"
