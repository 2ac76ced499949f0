"""How long the worst batch of a project's data is, as the trainers tokenise it: the longest training record
(at most max_length) or the longest prompt a sampler starts from. The memory estimate (`estimate`) sizes a
step by it. The tokenised lengths are cached by each file's size and time, so an edited dataset is read again;
at most `ROWS_READ` records are read, since the method form estimates on every change.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from workbench import models, registry
from workbench import project as projects

DEFAULT_PROMPT_TOKENS = 256  # when the prompts cannot be read (no tokenizer yet, no prompt data)
ROWS_READ = 5000  # the records (or prompts) read for the longest: the form estimates on every change
# Methods whose pairs the trainer drops, rather than cuts, when either answer outgrows max_length (TRL's reward
# trainer): their longest batch is the longest pair that fits.
DROPS_LONG = ("reward",)


def training_sources(project_name: str, method_name: str, datasets: tuple[str, ...] = ()) -> list:
    """The training datasets a run of `method_name` reads: those named, else the project's training datasets
    of its kinds (and mixed files)."""
    from workbench.run.spec import DataSource

    project = projects.load(project_name)
    kinds = registry.get(method_name).data_kinds
    return [DataSource(dataset=d.name, file=str(project.path / d.file), kind=d.kind) for d in project.datasets
            if (d.name in datasets if datasets else d.split == "train" and (d.kind in kinds or d.kind == "mixed"))]


def _files_key(sources: list) -> tuple:
    """The sources as a cache key: each with its file's size and time, so an edited file is read again."""
    key = []
    for s in sources:
        try:
            stat = Path(s.file).stat()
            key.append((s.dataset, s.file, s.kind, s.weight, stat.st_size, stat.st_mtime_ns))
        except OSError:
            key.append((s.dataset, s.file, s.kind, s.weight, -1, -1))
    return tuple(key)


def _sources(files: tuple) -> list:
    from workbench.run.spec import DataSource

    return [DataSource(dataset=d, file=f, kind=k, weight=w) for d, f, k, w, _size, _time in files]


def token_counts(tokenizer, items: list[Any], generation_prompt: bool = False) -> list[int]:
    """Tokens of each text, or conversation through the chat template (a prompt ends with the generation
    prompt), as the trainers tokenise them; in one batch (the form estimates on every change)."""
    chats = [i for i, item in enumerate(items) if isinstance(item, list)]
    texts = [i for i, item in enumerate(items) if not isinstance(item, list)]
    found = [0] * len(items)
    if chats:
        rendered = tokenizer.apply_chat_template([items[i] for i in chats], add_generation_prompt=generation_prompt,
                                                 tokenize=False)
        for i, ids in zip(chats, tokenizer(rendered, add_special_tokens=False)["input_ids"]):
            found[i] = len(ids)
    if texts:
        for i, ids in zip(texts, tokenizer([items[i] for i in texts])["input_ids"]):
            found[i] = len(ids)
    return found


def record_sequences(record: dict[str, Any]) -> list[Any]:
    """The sequences one (normalised) record trains as, each a text or a conversation: the whole chat, prompt +
    completion, prompt + each answer of a pair or a ranking, or each text of an embedding pair on its own."""
    if "messages" in record:
        return [record["messages"]]
    if "anchor" in record or "a" in record:  # a pair or triplet: each text is encoded on its own
        return [record[k] for k in ("anchor", "positive", "negative", "a", "b") if k in record]
    if "text" in record:
        return [record["text"]]
    prompt = record.get("prompt", "")
    answers = [record[k] for k in ("chosen", "rejected", "completion") if k in record]
    answers += list(record.get("completions") or [])
    chat = isinstance(prompt, list) or any(isinstance(a, list) for a in answers)
    if not chat:
        return [f"{prompt}{a}" for a in answers] or [prompt]
    as_turns = (lambda v, role: v if isinstance(v, list) else [{"role": role, "content": v}])
    return [as_turns(prompt, "user") + as_turns(a, "assistant") for a in answers]


def read_tokenizer(base: str):
    from workbench.data.prompts import has_chat_template

    tokenizer = models.load_tokenizer(tokenizer_folder(base))
    return tokenizer, has_chat_template(tokenizer)


@lru_cache(maxsize=8)
def _record_lengths(files: tuple, base: str) -> tuple[int, ...]:
    """Tokens of each of the first ROWS_READ training records (its longest sequence), or () when unreadable."""
    from workbench.data.errors import DataError
    from workbench.data.prep import read_source

    try:
        tokenizer, chat = read_tokenizer(base)
        records = [r for s in _sources(files) for r in read_source(s)][:ROWS_READ]
        owner, sequences = [], []
        for n, record in enumerate(records):
            for seq in record_sequences(record):
                if chat or not isinstance(seq, list):  # no template: the trainer refuses conversations
                    owner.append(n)
                    sequences.append(seq)
        lengths = [0] * len(records)
        for n, tokens in zip(owner, token_counts(tokenizer, sequences)):
            lengths[n] = max(lengths[n], tokens)
        return tuple(lengths)
    except (DataError, models.ModelError, OSError, ValueError, KeyError, TypeError):
        return ()


def longest_record(project_name: str, method_name: str, base: str, max_length: int,
                   datasets: tuple[str, ...] = ()) -> int:
    """Tokens of the longest training sequence `method_name` runs on this project's data, as its trainer
    tokenises it, at most `max_length` (what the trainer cuts it to): the batch that holds it is the one that
    needs the most memory. `max_length` when the records cannot be read."""
    sources = training_sources(project_name, method_name, datasets)
    lengths = _record_lengths(_files_key(sources), base) if sources else ()
    if method_name in DROPS_LONG:
        lengths = tuple(n for n in lengths if n <= max_length)
    return min(max_length, max(lengths)) if lengths else max_length


@lru_cache(maxsize=8)
def _prompt_lengths(files: tuple, base: str) -> tuple[int, ...]:
    from workbench.data.errors import DataError
    from workbench.data.prep import read_prompt_rows

    try:
        tokenizer, chat = read_tokenizer(base)
        rows = read_prompt_rows(_sources(files), 0, chat)
    except (DataError, models.ModelError, OSError, ValueError):
        return ()
    return tuple(token_counts(tokenizer, [row["prompt"] for row in rows[:ROWS_READ]], generation_prompt=True))


def longest_prompt(project_name: str, method_name: str, base: str, datasets: tuple[str, ...] = ()) -> int:
    """Tokens of the longest prompt of the project's training data that `method_name` takes, as the
    sampler sees it (through the chat template where the model has one): the batch that holds it is
    the one that needs the most memory."""
    sources = training_sources(project_name, method_name, datasets)
    lengths = _prompt_lengths(_files_key(sources), base) if sources else ()
    return max(lengths, default=0) or DEFAULT_PROMPT_TOKENS


def tokenizer_folder(base: str) -> Path:
    """Where the base's tokenizer is read: its folder, an adapter's base, the embedded model's converted folder."""
    if base == "default":
        return models.cached_folder(models.default_gguf())
    path = Path(base).expanduser()
    if models.is_adapter(path) and not (path / "tokenizer_config.json").exists():
        return tokenizer_folder(json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"])
    return path
