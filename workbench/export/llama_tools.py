"""llama.cpp's tools, one pinned version: its converters (from the llama-cpp-python sdist) and
its quantizer (through the llama_cpp bindings).

`python -m workbench.export.llama_tools install [--sdist FILE]` puts the converters of
LLAMA_CPP_VERSION in the tools folder (idempotent); `make env` runs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import deque
from pathlib import Path

from workbench import locations

LLAMA_CPP_VERSION = "0.3.36"
CONVERTERS = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py")
PACKAGES = ("gguf-py", "conversion")  # what the converters import, of the same llama.cpp commit
COMMON_QUANTS = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16")
FIX = "run `make env` (or `python -m workbench.export.llama_tools install`)"


class ToolsError(RuntimeError):
    """llama.cpp's tools are missing or refuse the export; the message says why, for a person."""

    kind = "export"


def tools_dir() -> Path:
    return locations.llama_tools_dir(LLAMA_CPP_VERSION)


def find_tools() -> Path:
    """The folder with the converters, or an error that says how to get them."""
    folder = tools_dir()
    missing = [name for name in (*CONVERTERS, *PACKAGES) if not (folder / name).exists()]
    if missing:
        raise ToolsError(f"llama.cpp converters not found in {folder} (missing {', '.join(missing)}): {FIX}.")
    return folder


def llama_cpp():
    """The llama_cpp bindings module, or an error that says how to get it."""
    try:
        import llama_cpp
    except Exception as exc:  # noqa: BLE001 - a missing or broken build reads the same to a person
        raise ToolsError(f"llama-cpp-python is not installed/built ({exc}): {FIX}.") from None
    return llama_cpp


def quant_types() -> dict[str, int]:
    """Every LLAMA_FTYPE_MOSTLY_* the pinned llama_cpp knows, by short name (Q4_K_M, F16...)."""
    module = llama_cpp()
    prefix = "LLAMA_FTYPE_MOSTLY_"
    return {name.removeprefix(prefix): value for name, value in vars(module).items()
            if name.startswith(prefix) and isinstance(value, int)}


def check_quants(names: list[str]) -> list[str]:
    known = quant_types()
    wanted = [name.strip().upper() for name in names if name.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ToolsError(f"Unknown quant type {', '.join(unknown)}. Available: {', '.join(sorted(known))}.")
    return wanted


def quantize(src: Path, dst: Path, type_name: str) -> Path:
    import ctypes

    module = llama_cpp()
    params = module.llama_model_quantize_default_params()
    params.ftype = quant_types()[type_name]
    params.nthread = os.cpu_count() or 1
    code = module.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if code != 0 or not dst.exists():
        dst.unlink(missing_ok=True)
        raise ToolsError(f"llama.cpp could not quantize {src.name} to {type_name} (code {code}).")
    return dst


def _env(folder: Path) -> dict[str, str]:
    paths = [str(folder / "gguf-py"), str(folder), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p), PYTHONUNBUFFERED="1")


def run_converter(script: str, args: list[str], status=print) -> None:
    """Run one converter in a child process, passing its log lines (not its progress bars) to `status`."""
    folder = find_tools()
    tail: deque[str] = deque(maxlen=20)
    proc = subprocess.Popen([sys.executable, str(folder / script), *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(folder))
    quiet = False
    for line in proc.stdout:
        line = line.strip()
        if re.match(r"[A-Z]+:", line):  # a new log record; others continue the last one
            quiet = line.startswith("INFO:gguf")  # the vocabulary's chatter (the whole chat template)
        if not line or "%|" in line or quiet:
            continue
        tail.append(line)
        status(line.removeprefix("INFO:hf-to-gguf:").removeprefix("INFO:lora-to-gguf:"))
    if proc.wait() != 0:
        errors = [line for line in tail if "Error" in line or "error" in line] or list(tail) or ["no output"]
        raise ToolsError(f"{script} failed: {errors[-1]}")


ARCH_PROBE = r"""
import json, sys
from conversion import TEXT_MODEL_MAP, ModelType, get_model_architecture
arch = get_model_architecture(json.load(open(sys.argv[1])), ModelType.TEXT)
print(json.dumps({"arch": arch, "supported": arch in TEXT_MODEL_MAP}))
"""


def check_architecture(folder: Path) -> str:
    """The model's architecture, if the pinned converter knows it; an error naming it otherwise."""
    tools = find_tools()
    config = Path(folder) / "config.json"
    if not config.exists():
        raise ToolsError(f"{folder} is not a model folder (no config.json in it).")
    out = subprocess.run([sys.executable, "-c", ARCH_PROBE, str(config)], capture_output=True, text=True,
                         env=_env(tools), cwd=tools, timeout=300)
    if out.returncode != 0:
        raise ToolsError(f"Could not read the converter's model list: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    if not probe["supported"]:
        raise ToolsError(f"Architecture {probe['arch']!r} is not supported by llama.cpp's converter "
                         f"(llama-cpp-python {LLAMA_CPP_VERSION}); it cannot be exported to GGUF.")
    return probe["arch"]


def install(sdist: Path | None = None, dest: Path | None = None, status=print) -> Path:
    """Extract the converters of LLAMA_CPP_VERSION from its sdist (downloaded by pip unless given)."""
    dest = dest or tools_dir()
    if all((dest / name).exists() for name in (*CONVERTERS, *PACKAGES)):
        status(f"llama.cpp converters {LLAMA_CPP_VERSION} already in {dest}")
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        if sdist is None:
            status(f"Downloading the llama-cpp-python {LLAMA_CPP_VERSION} sources")
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                            f"llama-cpp-python=={LLAMA_CPP_VERSION}", "-d", tmp],
                           check=True)
            sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        root = f"llama_cpp_python-{LLAMA_CPP_VERSION}/vendor/llama.cpp/"
        partial = dest.with_name(dest.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                rel = member.name.removeprefix(root)
                if member.name.startswith(root) and member.isfile() and (
                        rel in CONVERTERS or rel.split("/")[0] in PACKAGES):
                    target = partial / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tar.extractfile(member).read())
    missing = [name for name in (*CONVERTERS, *PACKAGES) if not (partial / name).exists()]
    if missing:
        raise ToolsError(f"{sdist} lacks {', '.join(missing)}: is it llama-cpp-python {LLAMA_CPP_VERSION}?")
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)
    status(f"llama.cpp converters {LLAMA_CPP_VERSION} written to {dest}")
    return dest


def main(argv: list[str]) -> int:
    if argv[:1] == ["version"]:
        print(LLAMA_CPP_VERSION)
        return 0
    if argv[:1] == ["install"]:
        sdist = Path(argv[argv.index("--sdist") + 1]) if "--sdist" in argv else None
        install(sdist)
        return 0
    print("usage: python -m workbench.export.llama_tools version | install [--sdist FILE]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
