"""The data report of `workbench data`: datasets, kinds, token lengths, truncation, preflight;
and one record as the model sees it. Both are plain dicts, printed as text or JSON.

The token numbers are those of SFT with the settings the caller gives (the project's `sft`
defaults, see `methods.sft_params.project_settings`): the records are rendered by the base
model's tokenizer exactly as training renders them (see `workbench.data.render`).
"""

from __future__ import annotations

from collections import Counter

from workbench import models
from workbench import project as projects
from workbench.data import kinds, preflight
from workbench.data.errors import DataError
from workbench.data.memory import free_bytes, model_shape
from workbench.data.prep import is_conversational, read_source, sft_rows
from workbench.data.render import Rendered, render, segments, stop_token_ids, tokenize
from workbench.data.stats import token_stats
from workbench.run.spec import DataSource

SFT_KINDS = ("chat", "prompt_completion", "text")


class ReportError(ValueError):
    """A report that cannot be made as asked (no such record...)."""


def _read(project: projects.Project, entry: projects.DatasetEntry) -> list[dict]:
    return read_source(DataSource(dataset=entry.name, file=str(project.path / entry.file), kind=entry.kind))


def _sft(records: list[dict]) -> list[dict]:
    return [r for r in records if kinds.detect(r) in SFT_KINDS]


def _rows(records: list[dict], conversational: bool) -> list[dict]:
    try:
        return sft_rows(records, conversational)
    except DataError:  # text beside chat data: shown on its own, refused for training by the preflight
        return sft_rows(records)


def _render_all(groups: list[list[dict]], tokenizer, max_length: int, stops: set[int],
                conversational: bool) -> list[list[Rendered]]:
    out = []
    for group in groups:
        prepared = tokenize(_rows(group, conversational), tokenizer) if group else None
        out.append([render(ids, labels, max_length, stops)
                    for ids, labels in zip(prepared["input_ids"], prepared["labels"])] if prepared else [])
    return out


def _tokenizer(project: projects.Project):
    folder = models.resolve(project.base_model)
    return folder, models.load_tokenizer(folder)


def build_report(project_name: str, settings, dataset: str | None = None) -> dict:
    """`settings`: the SFT parameters the records are measured with (max_length, batch_size, mode)."""
    project = projects.load(project_name)
    entries = [project.dataset(dataset)] if dataset else list(project.datasets)
    p = settings
    found = preflight.Preflight()
    loaded: list[list[dict]] = []
    for entry in entries:
        try:
            loaded.append(_read(project, entry))
        except DataError as exc:
            found.errors.append(str(exc))
            loaded.append([])
    counts = Counter(kinds.detect(r) for records in loaded for r in records)
    named = [(e.name, records) for e, records in zip(entries, loaded)]
    folder, tokenizer = _tokenizer(project)
    found.extend(preflight.check_pairs(named))
    template = preflight.check_template(named, tokenizer)
    found.extend(template)
    sft = [_sft(records) for records in loaded]
    conversational = is_conversational([r for g in sft for r in g])
    try:
        sft_rows([r for e, g in zip(entries, sft) if e.split == "train" for r in g], conversational)
    except DataError as exc:
        found.errors.append(str(exc))
    rendered = [[] for _ in sft] if template.errors else \
        _render_all(sft, tokenizer, p.max_length, stop_token_ids(tokenizer, folder), conversational)
    trained = [r for e, group in zip(entries, rendered) if e.split == "train" for r in group]
    found.extend(preflight.check_rendered(trained, p.max_length))
    if trained:
        device = "cuda" if _has_cuda() else "cpu"
        free, where = free_bytes(device)
        longest = min(p.max_length, max(r.tokens for r in trained))
        found.extend(preflight.check_memory(model_shape(folder), p.batch_size, longest, p.mode == "full",
                                            free, where, 2 if device == "cuda" else 4))
    everything = [r.tokens for group in rendered for r in group]
    return {
        "project": project.name,
        "datasets": [{"name": e.name, "kind": e.kind, "records": len(records), "split": e.split,
                      "tokens": token_stats([r.tokens for r in group], p.max_length)}
                     for e, records, group in zip(entries, loaded, rendered)],
        "kinds": dict(counts.most_common()),
        "tokens": token_stats(everything, p.max_length),
        "preflight": found.to_dict(),
    }


def show_record(project_name: str, index: int, settings, dataset: str | None = None) -> dict:
    """Record `index` (0-based) of a dataset (default: the first training one), rendered with `settings`."""
    project = projects.load(project_name)
    if not project.datasets:
        raise ReportError(f"Project '{project_name}' has no datasets yet.")
    train = [d for d in project.datasets if d.split == "train"]
    entry = project.dataset(dataset) if dataset else (train or project.datasets)[0]
    records = _read(project, entry)
    if not 0 <= index < len(records):
        raise ReportError(f"Dataset '{entry.name}' has {len(records)} record(s); "
                          f"--show takes 0 to {len(records) - 1}.")
    record = records[index]
    kind = kinds.detect(record)
    if kind not in SFT_KINDS:
        raise ReportError(f"Record {index} of '{entry.name}' is a {kind} record; "
                          f"it can be shown rendered once a method that trains on {kind} data exists.")
    p = settings
    others = [r for d in project.datasets if d.split == entry.split and d.kind in SFT_KINDS + ("mixed",)
              for r in _sft(_read(project, d))]
    folder, tokenizer = _tokenizer(project)
    preflight.check_template([(entry.name, [record])], tokenizer).raise_errors()
    prepared = tokenize(_rows([record], is_conversational(others + [record])), tokenizer)
    shown = render(prepared["input_ids"][0], prepared["labels"][0], p.max_length, stop_token_ids(tokenizer, folder))
    return {
        "index": index, "dataset": entry.name, "kind": kind, "record": record,
        "segments": segments(shown, tokenizer), "tokens": shown.tokens, "loss_tokens": shown.loss_tokens,
        "truncated": shown.truncated, "max_length": p.max_length,
    }


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
