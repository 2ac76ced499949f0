#!/usr/bin/env bash
# The GPU check in one command, for a CUDA machine with Python and a CUDA build of torch, online or not:
# the tests on the GPU, then bench/gpu.py, inside a time budget. From the repository root, after
# `sh scripts/gpu_kit.sh` built .gpu-kit/ (on a machine where pip works; copy it along):
#
#   bash bench/gpu_check.sh [SECONDS]     # default 480
#
# A third of the budget goes to the tests, in parallel with pytest-xdist: first those of the GPU path
# (tests/e2e/test_gpu.py), then unit, end-to-end and fault tests on the tiny model, which hide the GPUs (left
# out: the UI, the import layers, the GGUF tests and those loading the embedded model).
# The rest goes to bench/gpu.py, its rows in order of what they tell, stopped when the next would not fit.
# Everything is written as it comes into GPU_CHECK_OUT (default bench/gpu-check/): env.txt (GPU, driver,
# versions, what a carried package lacks), tests-gpu.log, tests.log, gpu.log and gpu.json, so a check cut
# short still leaves what it measured.
set -uo pipefail
cd "$(dirname "$0")/.."
budget=${1:-480}
out=${GPU_CHECK_OUT:-bench/gpu-check}
kit=${KIT:-.gpu-kit}
py=${PYTHON:-python3}
start=$SECONDS
mkdir -p "$out"
[ -d "$kit/wheels" ] || { echo "no $kit/wheels: run sh scripts/gpu_kit.sh where pip works, and copy $kit here" >&2; exit 2; }

$py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$kit/site" \
    "$kit"/wheels/*.whl >"$out/install.log" 2>&1 || { cat "$out/install.log"; exit 3; }
export PYTHONPATH="$PWD/$kit/site:$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 WORKBENCH_CACHE="$PWD/$kit/cache"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    $py - "$kit/site" <<'EOF'
import importlib, os, torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s):",
      ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())),
      f"bf16={torch.cuda.is_available() and torch.cuda.is_bf16_supported()}, {os.cpu_count()} CPU cores")
for name in ("transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "liger_kernel", "flash_attn",
             "textual", "pytest", "xdist"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')} ({os.path.dirname(module.__file__)})")
    except Exception as exc:  # noqa: BLE001 - a package that cannot load is what this line is for
        print(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
# What a carried package needs and this machine lacks, or has at a version outside its range.
import sys
from importlib import metadata
from packaging.requirements import Requirement
for dist in metadata.distributions(path=[sys.argv[1]]):
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            have = None
        if have is None or not req.specifier.contains(have, prereleases=True):
            print(f"unmet: {dist.metadata['Name']} needs {req} (here: {have or 'not installed'})")
EOF
} >"$out/env.txt" 2>&1
cat "$out/env.txt"

tests=$((budget / 3))
cores=$(nproc)
workers=$(( cores > 16 ? 8 : (cores > 3 ? cores / 2 : 1) ))
echo "tests: $tests s, $workers in parallel"
# First the tests of the GPU path (marked gpu: the rest of the suite hides the GPUs and checks the CPU path).
timeout -k 10 "$tests" $py -m pytest tests/e2e/test_gpu.py -m gpu -q -n 4 -p no:cacheprovider --timeout 300 -rfEs \
    >"$out/tests-gpu.log" 2>&1
[ $? -eq 124 ] && echo "(stopped at $tests s)" >>"$out/tests-gpu.log"
tail -n 30 "$out/tests-gpu.log"
rest=$((tests - (SECONDS - start)))
if [ $rest -gt 30 ]; then
    timeout -k 10 "$rest" $py -m pytest tests/unit tests/e2e tests/faults -m "not gguf and not slow and not gpu" -q \
        --ignore tests/unit/test_layers.py --ignore tests/unit/test_import_hygiene.py -n "$workers" -p no:cacheprovider \
        --timeout 300 -rfE >"$out/tests.log" 2>&1
    [ $? -eq 124 ] && echo "(stopped at $rest s)" >>"$out/tests.log"
    tail -n 40 "$out/tests.log"
fi

left=$((budget - (SECONDS - start)))
echo "bench/gpu.py: $left s"
timeout -k 10 "$left" $py bench/gpu.py --budget $((left - 15)) \
    --out "$out/gpu.json" 2>&1 | tee "$out/gpu.log"
echo "done in $((SECONDS - start)) s; files in $out"
