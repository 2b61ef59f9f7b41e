#!/usr/bin/env bash
# Packs what ci/gpu-check.sh needs on a GPU machine (no Rust toolchain, no network; it receives
# the repository plus at most 64 MiB of ignored files) into gpu-pack/ (ignored):
#   mmsr-bench.xz   the CUDA-linked binary (ci/build-cuda.sh), stripped and xz-compressed
#                   (15 MB -> 4 MB: the full pack is over the limit with the binary as is)
#   data.tar.xz     official-beauty and mmsr-parity from the shared data, and beauty-offline
#                   prepared here (its codes computed once, so the GPU spends no time on them)
#   MANIFEST        sizes and sha256 of the above, the commit and how they were made
# Usage: ci/pack-gpu.sh [--quick] [CUDA_BINARY]   (default target-cuda/release/mmsr-bench)
#   --quick: without the prepared beauty-offline (minutes of CPU here), for `gpu-check.sh --quick`
#   only, which runs the Beauty and scaling steps on synthetic data (the test suite's dry run).
#   MMSR_PACK_PREPARE_BIN: the binary that prepares beauty-offline here (default: the CPU build,
#   target/release/mmsr-bench; a CUDA-linked one only starts where CUDA is installed).
#   MMSR_SHARED_DATA: the shared data folder (default ../shared/data).
#   MMSR_PACK_DIR: where the pack goes (default gpu-pack).
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0
if [ "${1:-}" = --quick ]; then QUICK=1; shift; fi
BIN=${1:-target-cuda/release/mmsr-bench}
PREPARE_BIN=${MMSR_PACK_PREPARE_BIN:-target/release/mmsr-bench}
SHARED=${MMSR_SHARED_DATA:-../shared/data}
LIMIT=$((64 * 1024 * 1024))
DEST=${MMSR_PACK_DIR:-gpu-pack}
PARTIAL="$DEST.partial"
for f in "$BIN" "$PREPARE_BIN"; do
  [ -x "$f" ] || { echo "error: $f is missing: build it first (ci/build-cuda.sh; cargo build --release)" >&2; exit 2; }
done
for d in official-beauty mmsr-parity; do
  [ -d "$SHARED/$d" ] || { echo "error: $SHARED/$d is missing (set MMSR_SHARED_DATA)" >&2; exit 2; }
done

staging=$(mktemp -d)
trap 'rm -rf "$staging" "$PARTIAL"' EXIT
rm -rf "$PARTIAL" && mkdir -p "$PARTIAL" "$staging/shared" "$staging/data"
strip -o "$staging/mmsr-bench" "$BIN"
xz -9 -T2 -c "$staging/mmsr-bench" > "$PARTIAL"/mmsr-bench.xz
cp -r "$SHARED/official-beauty" "$SHARED/mmsr-parity" "$staging/shared/"
if [ "$QUICK" = 0 ]; then
  "$PREPARE_BIN" -q --data-dir "$staging/data" prepare beauty-offline --shared-data "$SHARED" >/dev/null
  rm -rf "$staging/data/raw"
fi
tar -C "$staging" -cf - shared data | xz -6 -T2 > "$PARTIAL"/data.tar.xz
{
  echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (uncommitted changes)')"
  echo "made $(date -u +%Y-%m-%dT%H:%M:%SZ) by ci/pack-gpu.sh from $BIN$([ "$QUICK" = 1 ] && echo ' (--quick: no beauty-offline)')"
  echo "mmsr-bench (unpacked) $(stat -c %s "$staging/mmsr-bench") bytes sha256 $(sha256sum "$staging/mmsr-bench" | cut -d' ' -f1)"
  for f in mmsr-bench.xz data.tar.xz; do
    echo "$f $(stat -c %s "$PARTIAL/$f") bytes sha256 $(sha256sum "$PARTIAL/$f" | cut -d' ' -f1)"
  done
} > "$PARTIAL"/MANIFEST
total=$(du -sb "$PARTIAL" | cut -f1)
if [ "$total" -gt "$LIMIT" ]; then
  echo "error: gpu-pack is $total bytes, above the $LIMIT-byte limit of what travels to the GPU machine" >&2
  exit 1
fi
rm -rf "$DEST" && mv "$PARTIAL" "$DEST"
echo "$DEST/: $total bytes (limit $LIMIT)"
cat "$DEST/MANIFEST"
