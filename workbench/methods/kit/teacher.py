"""The teacher of a distillation: where it is, whether it speaks the student's tokens, and its top-k cache.

Distilling full distributions compares the two models' probabilities token id by token id,
so both must share one tokenizer: the same vocabulary with the same ids, and the same
special tokens. `check_tokenizers` names every difference; it loads tokenizers only.

The top-k cache: the teacher's k most likely tokens at every answer position, with their
log-probabilities, computed once into the run folder (one `torch.save` file per shard of
rows, memory-mapped when read back). It stands for the whole distribution renormalised over
those k tokens: the teacher's mass outside them is dropped. At temperature 1 that mass is
usually small; a high temperature spreads more of it, so raise top_k with the temperature.
"""

from __future__ import annotations

import json
from pathlib import Path

from workbench import models
from workbench.methods.kit.train_args import dtype_name, load_model
from workbench.params import ParamError
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec

SPECIAL = ("eos", "pad", "bos", "unk")
SHARD_ROWS = 256
CACHE_DIR = "teacher_topk"


def resolve(project: str, ref: str, status) -> Path:
    """The teacher's model folder from a reference (run:<id>, a checkpoint, a path; an adapter is merged once)."""
    from workbench.run.model_refs import RefError, resolve_ref

    try:
        base = resolve_ref(project, ref)
    except RefError as exc:
        raise ParamError(f"teacher: {exc}") from None
    return models.resolve(base, status=status)


def check_tokenizers(student_folder: Path, teacher_folder: Path) -> list[str]:
    """Every way the teacher's tokenizer differs from the student's, as sentences; empty when they match."""
    student = models.load_tokenizer(student_folder)
    teacher = models.load_tokenizer(teacher_folder)
    return compare_vocabularies(student.get_vocab(), teacher.get_vocab(), _specials(student), _specials(teacher))


def compare_vocabularies(student: dict[str, int], teacher: dict[str, int],
                         student_special: dict[str, str | None], teacher_special: dict[str, str | None]) -> list[str]:
    problems = []
    if len(student) != len(teacher):
        problems.append(f"the teacher's vocabulary has {len(teacher)} tokens, the student's {len(student)}")
    only_teacher = sorted(set(teacher) - set(student), key=teacher.get)
    only_student = sorted(set(student) - set(teacher), key=student.get)
    moved = sorted((t for t in set(student) & set(teacher) if student[t] != teacher[t]), key=student.get)
    if only_teacher:
        problems.append(f"{len(only_teacher)} token(s) only the teacher has ({_some(only_teacher)})")
    if only_student:
        problems.append(f"{len(only_student)} token(s) only the student has ({_some(only_student)})")
    if moved:
        token = moved[0]
        problems.append(f"{len(moved)} token(s) have other ids (e.g. {token!r} is {teacher[token]} in the "
                        f"teacher, {student[token]} in the student)")
    for name in SPECIAL:
        if student_special[name] != teacher_special[name]:
            problems.append(f"the {name} token differs (teacher {teacher_special[name]!r}, "
                            f"student {student_special[name]!r})")
    return problems


def require_same_tokenizer(student_folder: Path, teacher_folder: Path) -> None:
    problems = check_tokenizers(student_folder, teacher_folder)
    if problems:
        raise ParamError(f"teacher: {'; '.join(problems)}: distillation of full distributions needs the same "
                         "tokenizer. Pick a teacher of the student's family (or train the student from the teacher's "
                         "base).")


def _specials(tokenizer) -> dict[str, str | None]:
    return {name: getattr(tokenizer, f"{name}_token", None) for name in SPECIAL}


def _some(tokens: list[str], n: int = 3) -> str:
    return ", ".join(repr(t) for t in tokens[:n]) + (", ..." if len(tokens) > n else "")


def load(folder: Path, dtype: str, device: str):
    """The teacher in eval mode with no gradients: it is read, never trained."""
    model = models.load_causal_lm(folder, dtype=dtype, device=device)
    model.eval()
    model.requires_grad_(False)
    return model


def prepare(spec: JobSpec, job: JobContext, ref: str, student_folder: Path) -> Path:
    """The teacher's model folder: resolved from `ref`, noted in the spec, and refused unless it
    shares the student's tokenizer (loaded after the student's base is prepared)."""
    job.status(f"Preparing the teacher {ref}")
    folder = resolve(spec.project, ref, job.status)
    spec.notes.append(f"Teacher {ref}: {folder}")
    require_same_tokenizer(student_folder, folder)
    return folder


def load_with_student(spec: JobSpec, job: JobContext, p, student_folder: Path, teacher_folder: Path):
    """(student, teacher): the student loaded for its mode (`load_model`), and the teacher frozen in
    eval mode on the same device, in the student's dtype."""
    job.status(f"Loading {models.describe(spec.base_model)} and the teacher")
    model = load_model(p, student_folder, spec.runtime)
    return model, load(teacher_folder, dtype_name(spec.runtime), spec.runtime.device)


# --- The top-k cache ---------------------------------------------------------------------------

def answer_positions(labels):
    """Positions whose logits predict an answer token (the next label is not ignored), as a bool mask."""
    return labels[..., 1:] != -100


def build_cache(teacher_model, dataset, folder: Path, top_k: int, batch_size: int, pad_id: int,
                key: dict, status, width: int | None = None) -> None:
    """Write the teacher's top-k log-probs at every answer position of `dataset` (rows with a `row` id).

    Skipped when `folder` already holds a cache made with the same `key` (a resumed run)."""
    import torch

    manifest = folder / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("key") == key:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("shard-*.pt"):
        old.unlink()
    device = next(teacher_model.parameters()).device
    total, shard = len(dataset), 0
    for start in range(0, total, SHARD_ROWS):
        rows = dataset.select(range(start, min(start + SHARD_ROWS, total)))
        entries: dict[int, tuple] = {}
        for b in range(0, len(rows), batch_size):
            batch = rows.select(range(b, min(b + batch_size, len(rows))))
            ids, mask, labels = _pad(batch["input_ids"], batch["labels"], pad_id, device)
            with torch.inference_mode():
                logits = teacher_model(input_ids=ids, attention_mask=mask).logits[:, :-1, :width].float()
            where = answer_positions(labels)
            top = torch.log_softmax(logits, dim=-1).topk(top_k, dim=-1)
            for i, row in enumerate(batch["row"]):
                entries[int(row)] = (top.indices[i][where[i]].to(torch.int32).cpu(),
                                     top.values[i][where[i]].to(torch.float16).cpu())
            status(f"Teacher top-{top_k}: {start + b + len(batch)}/{total} records", (start + b + len(batch)) / total)
        torch.save(entries, folder / f"shard-{shard:05d}.pt")
        shard += 1
    manifest.write_text(json.dumps({"key": key, "rows": total, "shards": shard}))


def load_cache(folder: Path) -> dict[int, tuple]:
    """{row id: (token ids [n, k], log-probs [n, k])}, memory-mapped from the shard files."""
    import torch

    entries: dict[int, tuple] = {}
    for path in sorted(folder.glob("shard-*.pt")):
        entries.update(torch.load(path, mmap=True, weights_only=True))
    return entries


def _pad(input_ids, labels, pad_id: int, device):
    import torch

    length = max(len(x) for x in input_ids)
    ids = torch.full((len(input_ids), length), pad_id, dtype=torch.long)
    lab = torch.full((len(input_ids), length), -100, dtype=torch.long)
    mask = torch.zeros((len(input_ids), length), dtype=torch.long)
    for i, (x, y) in enumerate(zip(input_ids, labels)):
        ids[i, :len(x)] = torch.tensor(x)
        lab[i, :len(y)] = torch.tensor(y)
        mask[i, :len(x)] = 1
    return ids.to(device), mask.to(device), lab.to(device)
