#!/usr/bin/env bash
# Installs the pinned libtorch (PyPI torch==2.11.0 wheel, unpacked, no Python environment needed)
# into .torch/ unless it is already there. tch 0.24 needs exactly torch 2.11.x: keep them pinned together.
# The two small nvidia wheels are the CUDA runtime libraries that libtorch_cpu.so links even on a CPU box.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_PIN="torch==2.11.0"
CUDA_RUNTIME_PIN="nvidia-cuda-runtime==13.0.96"
CUPTI_PIN="nvidia-cuda-cupti==13.0.85"

if [ -f .torch/torch/lib/libtorch_cpu.so ] && grep -q "__version__ = '2.11.0" .torch/torch/version.py 2>/dev/null; then
  echo "libtorch 2.11.0 already in .torch"
  exit 0
fi

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || { echo "error: python3 with pip is needed to fetch the torch wheel (apt-get install python3-pip)" >&2; exit 2; }

echo "installing libtorch ($TORCH_PIN, about 545 MB download, 1.2 GB on disk) into .torch ..."
rm -rf .torch.partial
# --target skips the PEP 668 'externally managed' check and leaves the system Python untouched.
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --no-cache-dir \
  --target .torch.partial "$TORCH_PIN" "$CUDA_RUNTIME_PIN" "$CUPTI_PIN"
rm -rf .torch
mv .torch.partial .torch   # only a complete install ever becomes .torch
echo "libtorch installed in .torch"
