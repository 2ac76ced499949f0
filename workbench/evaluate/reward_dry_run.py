"""The dry run behind `workbench rewards`: a method's rewards on a few prompts, scored here.

The prompts, their columns and the completion shapes are the ones training would give the
rewards (the rows of `workbench.data.prompts.prompt_rows`; message lists where the model has
a chat template), and the rewards are set up as training sets them up
(`workbench.rewards.setup.method_rewards`, the reward model included), so what scores well
here scores well in the run. Each completion is judged as a training run's samples are
(`workbench.rewards.scoring.judge`): each reward's weighted score (absent where it gave none),
the total (None when no reward scored it) and the errors of the rewards that raised on it. A
reward that raised is reported once, with its first error and record and how many it failed on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.data.prompts import prompt_rows
from workbench.rewards import RewardError, completion_text
from workbench.rewards.scoring import judge
from workbench.rewards.setup import method_rewards


def dry_run(project_name: str, method: str = "grpo", values: dict[str, Any] | None = None,
            datasets: list[str] | tuple[str, ...] = (), model: str | None = None, n: int = 4, prompts: int = 3,
            completion: str | None = None, seed: int = 42) -> dict[str, Any]:
    """The report: the rewards, and per prompt its completions with each score and the total."""
    from workbench import params as params_mod
    from workbench import project as projects
    from workbench import registry

    if n < 1 or prompts < 1:
        raise RewardError("--n and --prompts must be at least 1.")
    chosen = registry.get(method)
    if "rewards" not in {i.name for i in params_mod.describe(chosen.params)}:
        raise RewardError(f"The method '{method}' has no rewards to try; use one that scores its samples, e.g. grpo.")
    project = projects.load(project_name)
    p = params_mod.build(chosen.params, {**project.defaults.get(method, {}), **(values or {})})
    model_ref = (model or "base").strip()
    folder = None if completion is not None else _model_folder(project_name, model_ref)
    chat = _has_template(folder or _known_folder(project_name, model_ref))
    rows = prompt_rows(_first_records(project, chosen, list(datasets), prompts), chat)

    tokenizer = _tokenizer(project_name, model_ref, folder) if folder or p.length_unit == "tokens" else None
    rewards = method_rewards(project_name, p, warn=lambda message: None, tokenizer=tokenizer)  # summed up below

    sampler = _Sampler(folder, tokenizer, p, seed) if folder else None
    groups = []
    for row in rows:
        prompt = row["prompt"]
        if sampler:
            texts, ids = sampler.sample(prompt, n)
        else:
            texts, ids = [completion] * n, None
        completions = [[{"role": "assistant", "content": t}] if isinstance(prompt, list) else t for t in texts]
        columns = {k: [v] * len(texts) for k, v in row.items() if k != "prompt"}
        if ids is not None:
            columns["completion_ids"] = ids
        judgement = judge(rewards, [prompt] * len(texts), completions, **columns)
        rows_out = []
        for i, text in enumerate(texts):
            judged = judgement.judged(i)
            rows_out.append({"completion": text, "scores": judged.scores, "total": judged.total,
                             "errors": judged.errors})
        groups.append({
            "index": row["record_index"],
            "prompt": completion_text(prompt[-1:] if isinstance(prompt, list) else prompt),
            "rows": rows_out,
        })
    named = [{"name": r.name, "weight": r.weight} for r in rewards]
    warnings = [line for r in rewards if (line := _failures(r))]
    return {"project": project_name, "method": method, "model": model_ref, "sampled": sampler is not None,
            "rewards": named, "prompts": groups, "warnings": warnings}


def _failures(reward) -> str | None:
    failures = getattr(reward, "failures", None)
    return failures.summary() if failures is not None else None


def _first_records(project, method, datasets: list[str], count: int) -> list[dict]:
    from workbench.data.prep import read_source
    from workbench.run.spec import DataSource

    entries = [project.dataset(name) for name in datasets] if datasets else \
        [d for d in project.datasets if d.split == "train" and d.kind in method.data_kinds]
    if not entries:
        raise RewardError(f"Project '{project.name}' has no {' or '.join(method.data_kinds)} dataset to take "
                          "prompts from; import one or name it with --dataset.")
    records: list[dict] = []
    for entry in entries:
        if entry.kind not in method.data_kinds and entry.kind != "mixed":
            raise RewardError(f"Dataset '{entry.name}' holds {entry.kind} records; {method.title} needs "
                              f"{' or '.join(method.data_kinds)}.")
        source = DataSource(dataset=entry.name, file=str(project.path / entry.file), kind=entry.kind)
        records.extend(read_source(source)[:count - len(records)])
        if len(records) >= count:
            break
    if not records:
        raise RewardError("The chosen datasets hold no records.")
    return records


def _model_folder(project_name: str, ref: str) -> Path:
    from workbench import models
    from workbench.run.model_refs import resolve_ref

    return models.resolve(resolve_ref(project_name, ref))


def _known_folder(project_name: str, ref: str) -> Path | None:
    """The model folder when it exists already (the default model may not be converted yet)."""
    from workbench import models
    from workbench.run.model_refs import resolve_ref

    base = resolve_ref(project_name, ref)
    if base == "default":
        try:
            return models.cached_folder(models.default_gguf())
        except models.ModelError:
            return None
    return Path(base)


def _has_template(folder: Path | None) -> bool:
    """Whether the model's tokenizer has a chat template, read from its files (no tokenizer loaded);
    the embedded default, not converted yet, is an instruct model with one."""
    if folder is None or not Path(folder).exists():
        return True
    folder = Path(folder)
    if (folder / "chat_template.jinja").exists() or (folder / "chat_template.json").exists():
        return True
    config = folder / "tokenizer_config.json"
    return config.exists() and bool(json.loads(config.read_text()).get("chat_template"))


def _tokenizer(project_name: str, ref: str, folder: Path | None):
    from workbench import models

    return models.load_tokenizer(folder or _model_folder(project_name, ref))


class _Sampler:
    """Samples completions as TRL's trainers do: the chat template with a generation prompt, then
    `max_completion_length` new tokens at the method's temperature (`workbench.generate`; top-k 50,
    transformers' default), each prompt with its own seed."""

    def __init__(self, folder: Path, tokenizer, p: Any, seed: int):
        from workbench import models

        self.model = models.load_causal_lm(folder).eval()
        self.tokenizer, self.p, self.seed, self.calls = tokenizer, p, seed, 0

    def sample(self, prompt: Any, n: int) -> tuple[list[str], list[list[int]]]:
        from workbench.generate import Sampling, generate

        tok = self.tokenizer
        text = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False) \
            if isinstance(prompt, list) else prompt
        (ids,) = generate(self.model, [tok(text, add_special_tokens=False)["input_ids"]],
                          self.p.max_completion_length, n=n, pad_id=tok.pad_token_id, stop_ids=[tok.eos_token_id],
                          sampling=Sampling(temperature=self.p.temperature, top_k=50), seeds=[self.seed + self.calls])
        self.calls += 1
        return tok.batch_decode(ids, skip_special_tokens=True), ids
