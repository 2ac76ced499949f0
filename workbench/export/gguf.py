"""GGUF exports: a model (a run merged into its base, or a base model) converted once to F16/BF16
by llama.cpp's converter, then quantized to each requested type; or a run's LoRA adapter alone.

Every file is checked (chat template and end-of-turn token in its metadata), verified against
the transformers model, and gets an Ollama Modelfile beside it. Each file is reported twice to
`on_file(path, result)`: once written (`result` None), once verified (`result` the report);
without `on_file`, as the progress lines `wrote NAME (SIZE)` and `verify NAME: SUMMARY`.
"""

from __future__ import annotations

import json
from math import prod
from pathlib import Path
from typing import Callable

from workbench.export import llama_tools, modelfile
from workbench.export.llama_tools import ToolsError
from workbench.export.outdir import holds_files
from workbench.run import disk

OUTTYPES = ("f16", "bf16")

OnFile = Callable[[Path, "dict | None"], None]


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def file_line(name: str, size: int, verification: str = "") -> str:
    """The progress line of a written file, or of its verification when there is one."""
    return f"verify {name}: {verification}" if verification else f"wrote {name} ({human_size(size)})"


def lines_of(status) -> OnFile:
    """An `on_file` that reports through `status`, one progress line each."""
    return lambda path, result=None: status(file_line(path.name, path.stat().st_size,
                                                      result["summary"] if result else ""))


def has_chat_template(folder: Path) -> bool:
    config = folder / "tokenizer_config.json"
    in_config = config.exists() and bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
    return in_config or (folder / "chat_template.jinja").exists()


def count_params(folder: Path) -> int:
    """Parameters of a model folder, read from its safetensors headers (else guessed from file sizes)."""
    total = 0
    for path in folder.glob("*.safetensors"):
        with open(path, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        total += sum(prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    return total or sum(p.stat().st_size for p in folder.glob("*.bin")) // 2


def bytes_per_param(type_name: str) -> float:
    name = type_name.upper()
    for prefix, size in (("F32", 4), ("F16", 2), ("BF16", 2), ("Q8", 1.1), ("Q6", 0.85), ("Q5", 0.72),
                         ("Q4", 0.62), ("IQ4", 0.62)):
        if name.startswith(prefix):
            return size
    return 0.5


def check_disk(out: Path, params: int, types: list[str], extra: int = 0) -> None:
    need = int(params * sum(bytes_per_param(t) for t in types) * 1.1) + extra
    probe = disk.existing(out)
    free = disk.free_bytes(probe)
    if free < need:
        raise ToolsError(f"Not enough free disk in {probe}: the export needs about {human_size(need)}, "
                         f"{human_size(free)} is free.")


def preflight(folder: Path, out: Path, quants: list[str], outtype: str, extra: int = 0) -> list[str]:
    """Every check that can fail before anything is written; returns the quant types, validated."""
    if outtype not in OUTTYPES:
        raise ToolsError(f"Unknown --outtype '{outtype}'. Available: {', '.join(OUTTYPES)}.")
    if holds_files(out):
        raise ToolsError(f"{out} exists and is not empty; choose another output folder (--out).")
    llama_tools.find_tools()
    quants = llama_tools.check_quants(quants)
    llama_tools.check_architecture(folder)
    if not has_chat_template(folder):
        raise ToolsError(f"{folder} has no chat template (tokenizer_config.json or chat_template.jinja); "
                         "the GGUF would not know how to format a conversation.")
    check_disk(out, count_params(folder), [outtype, *quants], extra)
    return quants


def gguf_metadata(path: Path) -> tuple[dict[str, str], Callable[[int], str]]:
    """A GGUF's metadata (every value as text) and its token texts, through llama.cpp loading the
    vocabulary alone: a tenth of a second, where reading every field in Python takes seconds."""
    from llama_cpp._internals import LlamaModel

    params = llama_tools.llama_cpp().llama_model_default_params()
    params.vocab_only = True
    model = LlamaModel(path_model=str(path), params=params, verbose=False)
    try:
        metadata = model.metadata()
        texts = {}
        for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"):
            if key in metadata:
                texts[int(metadata[key])] = model.token_get_text(int(metadata[key]))
    finally:
        model.close()
    return metadata, texts.__getitem__


def read_metadata(path: Path) -> tuple[str, list[str]]:
    """(chat template, end-of-turn token texts) from a GGUF; an error if either is missing."""
    fields, token_text = gguf_metadata(path)
    template = fields.get("tokenizer.chat_template")
    eos = fields.get("tokenizer.ggml.eos_token_id")
    if template is None or eos is None:
        missing = "tokenizer.chat_template" if template is None else "tokenizer.ggml.eos_token_id"
        raise ToolsError(f"{path.name} lacks {missing}: the converter did not find it in the tokenizer files.")
    ends = [int(fields[key]) for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id")
            if key in fields]
    return template, [token_text(i) for i in dict.fromkeys(ends)]


def file_type(path: Path) -> str:
    """The quant type of a GGUF (its general.file_type), by llama.cpp's name."""
    value = gguf_metadata(path)[0].get("general.file_type")
    names = {value: name for name, value in llama_tools.quant_types().items()}
    return names.get(int(value), "unknown") if value is not None else "unknown"


def verify(path: Path, hf_folder: Path, type_name: str, status, lora_base: Path | None = None,
           chat_check: bool = True, on_file: OnFile | None = None) -> dict:
    from workbench.export.verify import verify_gguf

    result = verify_gguf(path, hf_folder, type_name, lora_base_gguf=lora_base, status=status,
                         require_stop=chat_check)
    (on_file or lines_of(status))(path, result)
    return result


def finish(path: Path, hf_folder: Path, type_name: str, status, lora_base: Path | None = None,
           chat_check: bool = True, on_file: OnFile | None = None) -> dict:
    """Check, describe and verify one written GGUF."""
    (on_file or lines_of(status))(path, None)
    template, ends = read_metadata(lora_base or path)
    if lora_base is None:
        modelfile.write(path, template, ends)
    else:
        modelfile.write(lora_base, template, ends, adapter=path)
    return verify(path, hf_folder, type_name, status, lora_base, chat_check, on_file)


def convert_model(folder: Path, out: Path, name: str, outtype: str, status) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}-{outtype}.gguf"
    status(f"Converting {folder.name} to {outtype.upper()} with llama.cpp's converter")
    llama_tools.run_converter("convert_hf_to_gguf.py", [str(folder), "--outfile", str(target),
                                                        "--outtype", outtype], status)
    return target


def export_model(folder: Path, out: Path, name: str, quants: list[str], outtype: str, status,
                 chat_check: bool = True, on_file: OnFile | None = None) -> list[dict]:
    """Convert `folder` (checked by `preflight`) once, then quantize to each type; one result per file.
    The transformers reference of the verification is computed meanwhile, once for every file."""
    from workbench.export.verify import prefetch

    prefetch(folder)
    full = convert_model(folder, out, name, outtype, status)
    results = [dict(finish(full, folder, outtype.upper(), status, chat_check=chat_check, on_file=on_file),
                    path=str(full))]
    for type_name in quants:
        if type_name == outtype.upper():
            continue
        target = out / f"{name}-{type_name.lower()}.gguf"
        status(f"Quantizing to {type_name}")
        llama_tools.quantize(full, target, type_name)
        results.append(dict(finish(target, folder, type_name, status, chat_check=chat_check, on_file=on_file),
                            path=str(target)))
    return results


def export_lora(adapter: Path, base_folder: Path, base_gguf: Path | None, merged: Path, out: Path,
                name: str, status, chat_check: bool = True, on_file: OnFile | None = None) -> list[dict]:
    """The adapter alone as a GGUF LoRA, for `--lora` on a GGUF of its base (converted here if needed)."""
    from workbench.export.verify import prefetch

    results = []
    if base_gguf is None:
        prefetch(base_folder)
        base_gguf = convert_model(base_folder, out, "base", "f16", status)
        results.append(dict(finish(base_gguf, base_folder, "F16", status, chat_check=chat_check, on_file=on_file),
                            path=str(base_gguf)))
    target = out / f"{name}-lora-f16.gguf"
    prefetch(merged)
    status("Converting the adapter with llama.cpp's LoRA converter")
    llama_tools.run_converter("convert_lora_to_gguf.py", [str(adapter), "--base", str(base_folder),
                                                          "--outfile", str(target), "--outtype", "f16"], status)
    base_type = file_type(base_gguf)
    results.append(dict(finish(target, merged, base_type, status, lora_base=base_gguf, chat_check=chat_check,
                               on_file=on_file), path=str(target)))
    return results
