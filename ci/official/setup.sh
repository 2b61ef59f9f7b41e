#!/usr/bin/env bash
# Makes the Python environment that runs the official MMSR code beside ours (run_official.py):
# a virtual environment with the versions the parity fixture was made with, and the official
# modules at the pinned commit. Needs PyPI and a clone of github.com/HoldenHu/MMSR (give its
# path; no network to GitHub is assumed).
#   ci/official/setup.sh PATH/TO/MMSR-CLONE [VENV=.official-venv] [SRC=.official-mmsr]
set -euo pipefail
clone=${1:?usage: ci/official/setup.sh PATH/TO/MMSR-CLONE [VENV] [SRC]}
venv=${2:-.official-venv}
src=${3:-.official-mmsr}
commit=320d2dcb25961cdaf4750b5d98f30d5c6d11b013
python3 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.11.0 numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 \
  pyyaml tqdm colorlog colorama
mkdir -p "$src"
for f in aggregator.py base_model.py data_utils.py model.py pooler.py utils.py; do
  git -C "$clone" show "$commit:$f" > "$src/$f"
done
echo "official modules of $commit in $src; run:"
echo "  $venv/bin/python ci/official/run_official.py --mmsr $src --data ../shared/data/official-beauty --epochs 6 --out official.md"
