#!/usr/bin/env bash
# End to end on a real Slurm (start one with ci/slurm/local-cluster.sh): plan a small matrix with
# a model of every input type (none, graph sparse and dense, sequence, fusion), run it as a job
# array with sbatch, merge, and require the same run ids (the thread count is part of them: 2,
# the script's --cpus-per-task) and the same numbers, run file by run file and in the merged
# summary, as run-all with the same thread count.   ci/slurm/test-array.sh [BIN]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$(realpath "${1:-$root/target/release/mmsr-bench}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
matrix=(--models pop,items-only,gcn,kv-attention,sasrec,gru4rec,sasrec-late --seeds 1,2
        --device cpu --set train.max_epochs=2
        --set model.items-only.dim=16 --set model.gcn.dim=16
        --set model.gcn.init_codes_from_centres=false
        --set model.kv-attention.dim=16 --set model.kv-attention.layout=dense
        --set model.kv-attention.init_codes_from_centres=false
        --set model.sasrec.dim=16 --set model.gru4rec.dim=16 --set model.sasrec-late.dim=16)
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
# One process, all of the task's threads: what an array task runs.
OMP_NUM_THREADS=2 "$bin" -q --results-dir local run-all --jobs 1 "${matrix[@]}" >/dev/null
python3 - <<'PY'
import json, pathlib
def metrics(path):
    return {(r["dataset"], r["model"]): (sorted(r["seeds"]), r["test"]) for r in json.load(open(path))}
a, b = metrics("slurm/summary.json"), metrics("local/summary.json")
assert a == b, f"merged summary differs from run-all:\n{a}\n{b}"
def runs(folder):
    out = {}
    for p in pathlib.Path(folder, "runs").rglob("*.json"):
        r = json.loads(p.read_text())
        out[p.relative_to(folder).as_posix()] = (r["config"]["cpu_threads"], r["test"], r["learning_curve"][-1]["train_loss"] if r["learning_curve"] else None)
    return out
ra, rb = runs("slurm"), runs("local")
assert ra.keys() == rb.keys(), f"run ids differ:\n{sorted(ra)}\n{sorted(rb)}"
assert ra == rb, "a run's numbers differ between Slurm and run-all"
models = sorted({k.split("/")[2] for k in ra})
print(f"{len(ra)} runs ({', '.join(models)}): the same run ids (2 threads) and numbers under Slurm and run-all; merged summary of {len(a)} rows equal")
PY
"$bin" check slurm
echo "done in $(( $(date +%s) - start )) s"
