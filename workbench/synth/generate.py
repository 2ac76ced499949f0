"""Synthetic data: a teacher model writes a new chat dataset into the project.

Tasks:
- answers: the teacher answers each record's prompt (prompt, prompt/completion or chat records);
- questions: back-translation, the teacher writes the question each answer or text responds to;
- reasoning: the teacher thinks between <think> and </think>, then answers; where the record knows its
  answer (a prompt record's answer field, a completion, a chat's last answer), a trace is kept only
  when its final answer agrees.

Every generation passes the filters (length, pattern or form, agreement, exact and near-duplicates);
the kept records are appended to `generated.jsonl` in the run folder and synced batch by batch, so a
crash keeps them. At the end (or on stop) they become the project's dataset `output`, kind chat, and
`synth_report.toml` beside them says how many were generated, kept and dropped by each filter.

The recipe: params -> teacher -> source records -> generate and filter, batch by batch -> register.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from workbench import models
from workbench import params as params_mod
from workbench import project as projects
from workbench.data.errors import DataError
from workbench.data.prep import read_source
from workbench.data.prompts import answer_of as reference_of
from workbench.data.prompts import has_prompt, prompt_of
from workbench.files import write_atomic, write_toml
from workbench.methods.kit import teacher as teachers
from workbench.run import events as ev
from workbench.run import layout
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec
from workbench.synth.filters import Deduper, Filters, Tally, split_reasoning
from workbench.synth.params import SynthParams

RECORDS_FILE = layout.SYNTH_RECORDS
REPORT_FILE = layout.SYNTH_REPORT


@dataclass
class Item:
    """One request to the teacher: the messages it reads, and what the new record keeps around its reply."""

    request: list[dict]  # what the teacher is asked
    prompt: list[dict] | None  # answers, reasoning: the record's own prompt, which the new record keeps
    answer: str | None = None  # questions: the given answer the generated question goes with
    known: str | None = None  # reasoning: the known answer a trace must agree with


# --- Source records to requests ----------------------------------------------------------------

def answer_of(record: dict, answer_field: str) -> str | None:
    """A record's answer: a chat's last turn or a completion (`workbench.data.prompts.answer_of`), a text,
    or a prompt record's answer field."""
    known = reference_of(record)
    if known is not None:
        return known
    if "text" in record:
        return record["text"]
    value = record.get(answer_field)
    return None if value is None else str(value)


def with_template(messages: list[dict], template: str) -> list[dict]:
    """The prompt with its last user turn put through the template's {question}."""
    last = messages[-1]
    return [*messages[:-1], {**last, "content": template.format(question=last["content"])}]


def make_item(record: dict, p: SynthParams) -> Item | None:
    system = [{"role": "system", "content": p.system_prompt}] if p.system_prompt else []
    if p.task == "questions":
        answer = answer_of(record, p.answer_field)
        if not answer:
            return None
        return Item(system + [{"role": "user", "content": p.question_template.format(answer=answer)}], None, answer)
    prompt = prompt_of(record, chat=True) if has_prompt(record) else None
    if not prompt or prompt[-1].get("role") != "user":
        return None
    if p.task == "answers":
        return Item(system + with_template(prompt, p.answer_template), prompt)
    known = answer_of(record, p.answer_field) if p.check_answer else None
    return Item(system + with_template(prompt, p.reasoning_template), prompt, known=known)


def new_record(item: Item, text: str, task: str) -> dict:
    """The chat record a kept generation becomes."""
    if task == "questions":
        return {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": item.answer}]}
    if task == "reasoning":
        thought, answer = split_reasoning(text)
        text = f"<think>\n{thought}\n</think>\n\n{answer}"
    return {"messages": [*item.prompt, {"role": "assistant", "content": text}]}


# --- Generation --------------------------------------------------------------------------------

def render_request(tokenizer, messages: list[dict]) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n\n".join(m["content"] for m in messages) + "\n"


def generate(model, tokenizer, items: list[Item], p: SynthParams) -> list[list[str]]:
    """`n_per_prompt` replies to each item, sampled (greedy at temperature 0, where they repeat)."""
    import torch
    from transformers import GenerationConfig

    sample = p.temperature > 0
    config = GenerationConfig(max_new_tokens=p.max_new_tokens, do_sample=sample,
                              temperature=p.temperature if sample else None, top_p=None, top_k=None,
                              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    n = p.n_per_prompt
    texts = [render_request(tokenizer, item.request) for item in items for _ in range(n)]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    with torch.inference_mode():
        out = model.generate(**batch, generation_config=config)
    replies = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return [[r.strip() for r in replies[i * n:(i + 1) * n]] for i in range(len(items))]


# --- The recipe --------------------------------------------------------------------------------

def run(spec: JobSpec, job: JobContext):
    import torch

    # 1. Parameters, checked (templates, pattern, output name).
    p: SynthParams = params_mod.build(SynthParams, spec.params)
    output = p.output or projects.validate_name(f"{p.task}-{spec.train[0].dataset}"[:64])

    # 2. The teacher: the run's base model, or the model it names.
    job.status(f"Preparing the teacher {p.teacher}")
    teacher_folder = (models.resolve(spec.base_model, status=job.status) if p.teacher == "base"
                      else teachers.resolve(spec.project, p.teacher, job.status))
    spec.model_path = str(teacher_folder)
    tokenizer = models.load_tokenizer(teacher_folder)
    tokenizer.padding_side = "left"
    job.check_stop()

    # 3. Source records to requests; records that cannot serve the task are counted, not fatal.
    job.status("Reading the source records")
    records = [r for s in spec.train for r in read_source(s)]
    if p.limit:
        records = records[:p.limit]
    made = [make_item(r, p) for r in records]
    items = [i for i in made if i is not None]
    skipped = len(made) - len(items)
    if not items:
        raise DataError(f"No record of {', '.join(s.dataset for s in spec.train)} can serve the task '{p.task}' "
                        f"({'answers or texts' if p.task == 'questions' else 'prompts ending with a user turn'} "
                        "are needed).")
    job.data_counts = (len(items), 0)
    job.status(f"Loading the teacher {models.describe(str(teacher_folder))}")
    model = teachers.load(teacher_folder, "float32" if spec.runtime.device == "cpu" else "bfloat16",
                          spec.runtime.device)
    torch.manual_seed(spec.runtime.seed)
    job.check_stop()

    # 4. Generate batch by batch; each kept record is appended and synced; a stop ends after the batch.
    filters = Filters(p.min_chars, p.max_chars, p.require_regex,
                      "think" if p.task == "reasoning" else p.require_format, p.check_answer)
    dedupe = Deduper(threshold=p.near_duplicate if p.dedupe else 1.0, exact=p.dedupe)
    tally = Tally()
    tally.dropped.update({"unusable_record": skipped} if skipped else {})
    path = job.run_dir / RECORDS_FILE
    job.training = True  # from here a stop request is honoured between batches
    with open(path, "a", encoding="utf-8") as out:
        for start in range(0, len(items), p.batch_size):
            batch = items[start:start + p.batch_size]
            for item, replies in zip(batch, generate(model, tokenizer, batch, p)):
                for text in replies:
                    tally.generated += 1
                    record = keep(item, text, p.task, filters, dedupe, tally)
                    if record is None:
                        continue
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                    if tally.kept == 1:
                        job.emit(ev.Sample(step=0, prompt=record["messages"][-2]["content"],
                                           completion=record["messages"][-1]["content"]))
            out.flush()
            os.fsync(out.fileno())
            done = min(start + p.batch_size, len(items))
            job.last_step = done
            job.status(f"Generated for {done}/{len(items)} records: {tally.summary()}", done / len(items))
            if job.stop_requested:
                break

    # 5. The report, then the dataset registered in the project (what was kept so far, when stopped).
    write_toml(job.run_dir / REPORT_FILE, {"synth": {
        "task": p.task, "teacher": p.teacher, "teacher_path": str(teacher_folder), "output": output,
        "sources": [s.dataset for s in spec.train], "stopped": job.stop_requested, **tally.to_dict()}})
    job.status(f"Synthetic data: {tally.summary()}")
    if not tally.kept:
        raise DataError(f"Every generation was dropped ({tally.summary()}); loosen the filters, change the "
                        f"template or pick a stronger teacher. The report is in {REPORT_FILE}.")
    return register(spec, output, path, tally.kept)


def keep(item: Item, text: str, task: str, filters: Filters, dedupe: Deduper, tally: Tally) -> dict | None:
    """The new record when `text` passes every filter, else None with the reason counted."""
    why = filters.reason(text, item.known)
    if why is None:
        record = new_record(item, text, task)
        why = dedupe.check("\n".join(m["content"] for m in record["messages"]))
    if why is not None:
        tally.dropped[why] += 1
        return None
    tally.kept += 1
    return record


def register(spec: JobSpec, name: str, records: Path, count: int) -> Path:
    """Copy the kept records into `datasets/<name>.jsonl` (replacing one of that name) and list it."""
    project = projects.load(spec.project)
    target = project.path / "datasets" / f"{name}.jsonl"
    write_atomic(target, records.read_bytes())
    project = projects.load(spec.project)  # re-read: the person may have changed the project meanwhile
    project.datasets = [d for d in project.datasets if d.name != name]
    project.datasets.append(projects.DatasetEntry(name=name, kind="chat", records=count, source=f"run:{spec.id}",
                                                  imported=projects.now_iso(), split="train"))
    project.save()
    return target
