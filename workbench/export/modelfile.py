"""An Ollama Modelfile beside each GGUF: its chat template in Go-template text, and its stop tokens."""

from __future__ import annotations

from pathlib import Path

# Ollama's own renderings of the two chat-template families the workbench knows.
TEMPLATES = {
    "chatml": (
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
        "{{ end }}<|im_start|>assistant\n",
        ("<|im_start|>", "<|im_end|>"),
    ),
    "llama3": (
        "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>"
        "{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n",
        ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    ),
}


def family(chat_template: str) -> str | None:
    if "<|im_start|>" in chat_template:
        return "chatml"
    if "<|start_header_id|>" in chat_template:
        return "llama3"
    return None


def reference(path: Path, folder: Path) -> str:
    """`./name` for a file beside the Modelfile, else its absolute path."""
    return f"./{path.name}" if path.parent.resolve() == folder.resolve() else str(path.resolve())


def render(model: Path, chat_template: str, end_tokens: list[str], adapter: Path | None = None) -> str:
    folder = (adapter or model).parent
    lines = [f"FROM {reference(model, folder)}"]
    if adapter is not None:
        lines.append(f"ADAPTER {reference(adapter, folder)}")
    kind = family(chat_template)
    stops = list(TEMPLATES[kind][1]) if kind else []
    if kind:
        lines.append(f'TEMPLATE """{TEMPLATES[kind][0]}"""')
    else:
        lines.append("# Unknown chat-template family: Ollama will use the template embedded in the GGUF.")
    for token in end_tokens:
        if token and token not in stops:
            stops.append(token)
    lines += [f'PARAMETER stop "{token}"' for token in stops]
    return "\n".join(lines) + "\n"


def write(model: Path, chat_template: str, end_tokens: list[str], adapter: Path | None = None) -> Path:
    """Write `<file>.Modelfile` beside the GGUF (several GGUFs share one folder)."""
    target = adapter or model
    path = target.with_name(target.stem + ".Modelfile")
    path.write_text(render(model, chat_template, end_tokens, adapter), encoding="utf-8")
    return path
