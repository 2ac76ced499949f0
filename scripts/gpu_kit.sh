#!/bin/sh
# Builds .gpu-kit/: what `bench/gpu_check.sh` needs on a CUDA machine that has Python and a CUDA build of
# torch but cannot reach PyPI (an offline GPU server, a cluster node). Run it here, where pip works, then
# copy the repository with .gpu-kit/ to that machine.
#
#   sh scripts/gpu_kit.sh            # for Python 3.12 and CUDA 13 (the torch build's CUDA, `torch.version.cuda`)
#   KIT_PYTHON=3.11 KIT_CUDA=126 sh scripts/gpu_kit.sh
#
# It holds, pinned to the versions this checkout's .venv was tested with:
# - wheels/: the workbench's own dependencies, the test tools of its non-UI tests and the GPU extras
#   (bitsandbytes for QLoRA, liger-kernel): every package but torch and what a CUDA image already has
#   (numpy, pandas, pyarrow, scipy, huggingface_hub, tokenizers, pytest, pytest-xdist, ...). bitsandbytes
#   ships one library per CUDA version (43 MB in all): the kit keeps the one for KIT_CUDA and the CPU one.
# - cache/test-models/: the tiny test model (a random 2-layer Llama with the embedded model's tokenizer,
#   which is too large to carry: the tests that load it are left out there).
# Its size is printed; the whole is kept under 48 MiB.
set -eu
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
KIT=${KIT:-.gpu-kit}
KIT_PYTHON=${KIT_PYTHON:-3.12}
KIT_CUDA=${KIT_CUDA:-130}
LIGER_VERSION=${LIGER_VERSION:-0.8.5}
BNB_VERSION=${BNB_VERSION:-0.50.2}
[ -x "$PY" ] || { echo "no $PY: run make env first" >&2; exit 2; }

# The packages to carry, at this venv's versions.
NAMES="transformers peft trl accelerate datasets dill multiprocess xxhash
gguf textual textual-plotext plotext rich markdown-it-py mdit-py-plugins linkify-it-py platformdirs
tomli_w submitit tensorboardX sentence-transformers pytest-asyncio pytest-timeout"
PINS=$("$PY" -m pip list --format=freeze 2>/dev/null | "$PY" -c '
import re, sys
names = {re.sub(r"[-_.]+", "-", n).lower() for n in sys.argv[1].split()}
for line in sys.stdin:
    name = line.split("==")[0]
    if "==" in line and re.sub(r"[-_.]+", "-", name).lower() in names:
        print(line.strip())
' "$NAMES")
missing=$(echo "$NAMES" | tr ' ' '\n' | grep -v '^$' | while read -r n; do
    echo "$PINS" | grep -qi "^$(echo "$n" | sed 's/[-_.]/[-_.]/g')==" || echo "$n"; done)
[ -z "$missing" ] || { echo "not installed in $VENV: $missing" >&2; exit 2; }

rm -rf "$KIT/wheels" && mkdir -p "$KIT/wheels"
# shellcheck disable=SC2086
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$KIT_PYTHON" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d "$KIT/wheels" $PINS "liger-kernel==$LIGER_VERSION" "bitsandbytes==$BNB_VERSION"
"$PY" - "$KIT/wheels" "$KIT_CUDA" <<'EOF'
import pathlib, re, sys, zipfile
folder, cuda = pathlib.Path(sys.argv[1]), sys.argv[2]
wheel = next(folder.glob("bitsandbytes-*.whl"))
slim = wheel.with_suffix(".slim")
with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as dst:
    for item in src.infolist():
        lib = re.search(r"libbitsandbytes_(\w+?)\.(so|dylib|dll)$", item.filename)
        if lib and lib.group(1) not in (f"cuda{cuda}", "cpu"):
            continue
        dst.writestr(item, src.read(item))
slim.replace(wheel)
EOF
HF_HUB_OFFLINE=1 WORKBENCH_CACHE="$PWD/$KIT/cache" "$PY" -c \
    "from workbench import locations; from workbench.testing import make_tiny_model; \
print(make_tiny_model(locations.cache_home() / 'test-models' / 'tiny-llama-v1'))" >/dev/null
size=$(du -sm "$KIT/wheels" "$KIT/cache" | awk '{s += $1} END {print s}')
echo "$KIT: $(ls "$KIT/wheels" | wc -l) wheels and the tiny model, $size MiB (Python $KIT_PYTHON, CUDA $KIT_CUDA)"
[ "$size" -le 48 ] || { echo "$KIT is over 48 MiB" >&2; exit 1; }
