#!/usr/bin/env bash
# Builds a CUDA-enabled mmsr-bench for a GPU machine that has no Rust toolchain: links
# libtorch.so -> libtorch_cuda.so as DT_NEEDED (TCH_LINK_CUDA=1, see build.rs) into a separate
# target directory, so the CPU build in target/ is untouched. The binary needs the full torch
# 2.11 wheel (with its CUDA libraries) at run time; on the GPU machine run it as
#   LD_LIBRARY_PATH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib \
#     target-cuda/release/mmsr-bench run --device cuda ...
# and check first that `mmsr-bench run --model pop --device cuda` finds the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
./ci/setup-libtorch.sh
TCH_LINK_CUDA=1 CARGO_TARGET_DIR=target-cuda cargo build --release "$@"
echo "built target-cuda/release/mmsr-bench (CUDA linked)"
