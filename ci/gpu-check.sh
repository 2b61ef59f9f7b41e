#!/usr/bin/env bash
# The GPU check (issue 25): everything this project wants to know from a GPU, in one command that
# fits a short window (about 15 minutes with start-up; the steps below take well under 8 on an
# H100/H200). Run from the repository root, with gpu-pack/ made here by ci/build-cuda.sh and
# ci/pack-gpu.sh (the GPU machine has no Rust toolchain and no network):
#   ci/gpu-check.sh                      # --device cuda, the packed binary, results in gpu-check/
#   ci/gpu-check.sh --device cpu --bin target/release/mmsr-bench   # the same steps on this CPU
#   ci/gpu-check.sh --quick ...          # the plumbing only: synthetic data instead of Beauty,
#                                        # and only gcn in the scaling step
# Steps (each logged to OUT/<step>.log, timed in OUT/steps.tsv; a failing step is recorded and
# the rest still run; exit 1 if any failed):
#   1 smoke     `run` of pop and a one-epoch han-gnn on the embedded synthetic data
#   2 parity    HAN-GNN (compat) against the official model, outputs and every gradient
#               (`mmsr-bench parity`; tolerances x100 the CPU's on CUDA, whose kernels are not
#               bit-exact; structural zeros exact)
#   3 beauty    one Beauty epoch (official folder) of han-gnn, kv-attention, gcn and sasrec:
#               train seconds, test-pass seconds, peak memory, as result files
#   4 scaling   the reduced scaling study (baselines/scaling-gpu-check.yaml)
#   5 env       nvidia-smi, the binary's device kind
# OUT (default gpu-check/<device>) is what a later commit adds under leaderboard/*-h100 or
# *-h200 (results: OUT/beauty; study: OUT/scaling).
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
BIN=   # default: the pack's binary, unpacked into OUT/work
PACK=gpu-pack
QUICK=0
OUT=
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --pack) PACK=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    *) echo "usage: ci/gpu-check.sh [--device cuda|cpu] [--bin FILE] [--pack DIR] [--out DIR] [--quick]" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-gpu-check/$DEVICE}
for f in data.tar.xz mmsr-bench.xz; do
  [ -f "$PACK/$f" ] || { echo "error: $PACK/$f is missing (ci/build-cuda.sh && ci/pack-gpu.sh make $PACK/)" >&2; exit 2; }
done
[ -z "$BIN" ] || [ -x "$BIN" ] || { echo "error: --bin $BIN is not an executable file" >&2; exit 2; }
if [ "${DEVICE%%:*}" = cuda ]; then
  # The CUDA binary links the torch wheel's libraries; the GPU machine has that wheel installed.
  TORCH_LIB=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null) \
    && export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
rm -rf "$OUT" && mkdir -p "$OUT"
DATA="$OUT/work"
mkdir -p "$DATA" && xz -dc "$PACK/data.tar.xz" | tar -C "$DATA" -xf - || { echo "error: unpacking $PACK/data.tar.xz" >&2; exit 2; }
if [ -z "$BIN" ]; then
  BIN="$DATA/mmsr-bench"
  xz -dc "$PACK/mmsr-bench.xz" > "$BIN" && chmod +x "$BIN" || { echo "error: unpacking $PACK/mmsr-bench.xz" >&2; exit 2; }
fi
printf 'step\texit\tseconds\n' > "$OUT/steps.tsv"
failed=0
step() {
  local name=$1; shift
  local start end rc
  start=$(date +%s%N)
  "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  end=$(date +%s%N)
  printf '%s\t%s\t%d.%d\n' "$name" "$rc" $(((end - start) / 1000000000)) $(((end - start) / 100000000 % 10)) | tee -a "$OUT/steps.tsv"
  [ "$rc" -eq 0 ] || { failed=1; tail -5 "$OUT/$name.log"; }
}
M="$BIN -q --data-dir $DATA/data"
step smoke sh -c "$M --results-dir $OUT/smoke run --model pop --device $DEVICE && \
  $M --results-dir $OUT/smoke run --model han-gnn --device $DEVICE --max-epochs 1"
step parity $M parity --fixture "$DATA/shared/mmsr-parity" --device "$DEVICE" --out "$OUT/parity.json"
if [ "$QUICK" = 1 ]; then
  step beauty $M --results-dir "$OUT/beauty" run-all --config baselines/gpu-check-beauty.yaml \
    --device "$DEVICE" --datasets synthetic
  step scaling $M scaling --config baselines/scaling-gpu-check.yaml --dataset synthetic \
    --models gcn --device "$DEVICE" --out "$OUT/scaling"
else
  step beauty $M --results-dir "$OUT/beauty" run-all --config baselines/gpu-check-beauty.yaml \
    --device "$DEVICE" --set "official.dir=$DATA/shared/official-beauty" --set eval.batch_size=512
  step scaling $M scaling --config baselines/scaling-gpu-check.yaml --device "$DEVICE" \
    --out "$OUT/scaling"
fi
step env sh -c "nvidia-smi || echo 'no nvidia-smi here'; uname -a; nproc; free -g"
echo "gpu-check: $OUT ($( [ $failed = 0 ] && echo 'every step passed' || echo 'some steps FAILED'))"
exit $failed
