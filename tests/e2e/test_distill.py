"""Distillation end to end: offline (on the fly and from a top-k cache), on-policy (GKD), and the
refusal of a teacher whose tokenizer differs from the student's."""

from __future__ import annotations

import math
import time

import pytest

from tests.conftest import CHAT_RECORDS
from tests.e2e.conftest import cli, events, of_type, write_jsonl
from workbench import locations
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.run import events as ev

pytestmark = pytest.mark.e2e

SHORT = ["--wait", "--set", "batch_size=4", "--set", "eval_steps=0", "--set", "max_length=64",
         "--set", "save_steps=100", "--set", "warmup=0"]


@pytest.fixture(scope="session")
def teacher_model(tmp_path_factory, tiny_model):
    """The tiny model's architecture and tokenizer with other weights, made confident (its final norm
    scaled up) so that its distribution is far from the student's near-uniform one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workbench.testing import make_tiny_model

    folder = make_tiny_model(tmp_path_factory.mktemp("teacher") / "tiny-seed1", seed=1)
    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        model.model.norm.weight.mul_(20.0)
    out = folder.with_name("teacher")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder).save_pretrained(out)
    return out


@pytest.fixture
def chat_project(home, tiny_model, tmp_path) -> str:
    projects.create("distil", base_model=str(tiny_model))
    import_file("distil", write_jsonl(tmp_path / "chat.jsonl", CHAT_RECORDS))
    return "distil"


def train(project: str, *args: str) -> tuple[str, list[ev.Event], float]:
    started = time.time()
    result = cli("train", project, *SHORT, *args)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0].strip()
    got = events(project, run_id)
    assert of_type(got, ev.Finished)[-1].reason == "completed"
    return run_id, got, time.time() - started


def test_distillation_follows_the_teacher_and_logs_kl_and_ce(chat_project, teacher_model):
    _, got, _ = train(chat_project, "--method", "distill", "--set", f"teacher={teacher_model}",
                      "--set", "mode=full", "--set", "max_steps=20", "--set", "learning_rate=1e-2",
                      "--set", "scheduler=constant", "--set", "alpha=1")
    logs = of_type(got, ev.Log)
    assert [log.step for log in logs] == list(range(1, 21))
    kl = [log.metrics["kl"] for log in logs]
    assert all(math.isfinite(k) and "ce" in log.metrics for k, log in zip(kl, logs))
    print(f"distill kl: first {kl[0]:.4f}, step 10 {kl[9]:.4f}, last {kl[-1]:.4f}")
    assert kl[-1] < 0.5 * kl[0]  # measured: 0.665 -> 0.156
    assert sum(kl[-5:]) < sum(kl[:5])
    final = of_type(got, ev.Eval)[-1]
    assert final.step == 20 and final.metrics["kl"] < kl[0]


def test_top_k_cache_is_built_once_into_the_run_and_trains(chat_project, teacher_model):
    run_id, got, _ = train(chat_project, "--method", "distill", "--set", f"teacher={teacher_model}",
                           "--set", "teacher_cache=topk", "--set", "top_k=8", "--set", "max_steps=3")
    cache = locations.run_dir(chat_project, run_id) / "teacher_topk"
    assert (cache / "manifest.json").exists() and list(cache.glob("shard-*.pt"))
    assert any("Teacher top-8" in s.message for s in of_type(got, ev.Status))
    logs = of_type(got, ev.Log)
    assert len(logs) == 3 and all(math.isfinite(log.metrics["kl"]) for log in logs)
    assert (locations.run_dir(chat_project, run_id) / "adapter" / "adapter_config.json").exists()


def test_cached_top_k_lines_up_with_the_teacher_on_the_fly(tiny_model, teacher_model, tmp_path):
    """With k = the whole vocabulary, the cached loss equals the on-the-fly loss on the same batch."""
    import torch

    from workbench import models
    from workbench.data import render
    from workbench.data.prep import sft_rows
    from workbench.methods.distill import distill_loss, with_rows
    from workbench.methods.kit import teacher as teachers

    tokenizer = models.load_tokenizer(tiny_model)
    rows = with_rows(render.tokenize(sft_rows(CHAT_RECORDS[:3]), tokenizer), start=5)
    teacher = teachers.load(teacher_model, "float32", "cpu")
    student = teachers.load(tiny_model, "float32", "cpu")
    width = len(tokenizer)
    teachers.build_cache(teacher, rows, tmp_path / "cache", width, 2, tokenizer.pad_token_id, {"k": 1},
                         lambda *a: None, width=width)
    cache = teachers.load_cache(tmp_path / "cache")
    assert sorted(cache) == [5, 6, 7]
    ids, mask, labels = teachers._pad(rows["input_ids"], rows["labels"], tokenizer.pad_token_id, "cpu")
    with torch.no_grad():
        s_logits = student(input_ids=ids, attention_mask=mask).logits
        t_logits = teacher(input_ids=ids, attention_mask=mask).logits
    topk = tuple(torch.cat([cache[r][i] for r in (5, 6, 7)]) for i in (0, 1))
    assert topk[0].shape[0] == int((labels[:, 1:] != -100).sum())
    live = distill_loss(s_logits, labels, temperature=2.0, alpha=0.5, teacher_logits=t_logits, width=width)
    cached = distill_loss(s_logits, labels, temperature=2.0, alpha=0.5, teacher_topk=topk, width=width)
    assert cached.kl == pytest.approx(live.kl, rel=1e-2)  # the cache keeps log-probs in float16


def test_a_teacher_with_another_tokenizer_is_refused_with_the_difference(chat_project, tiny_model, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    from workbench.methods.kit.teacher import check_tokenizers

    other = tmp_path / "other-tokenizer"
    shutil.copytree(tiny_model, other)
    tokenizer = AutoTokenizer.from_pretrained(other)
    tokenizer.add_tokens(["<extra_token_for_test>"])
    tokenizer.save_pretrained(other)
    assert check_tokenizers(tiny_model, tiny_model) == []
    problems = check_tokenizers(tiny_model, other)
    assert problems[0] == "the teacher's vocabulary has 49153 tokens, the student's 49152"
    checked = cli("teacher-check", chat_project, str(other))
    assert checked.returncode == 1 and "the teacher's vocabulary has 49153 tokens" in checked.stderr
    checked = cli("teacher-check", chat_project, str(tiny_model))
    assert checked.returncode == 0 and "shares the student's tokenizer" in checked.stdout

    result = cli("train", chat_project, *SHORT, "--method", "distill", "--set", f"teacher={other}",
                 "--set", "max_steps=2")
    assert result.returncode != 0
    error = of_type(events(chat_project, result.stdout.splitlines()[0].strip()), ev.Error)[-1]
    assert error.kind == "bad_spec"
    assert "the teacher's vocabulary has 49153 tokens, the student's 49152" in error.message
    assert "distillation of full distributions needs the same tokenizer" in error.message


def test_a_missing_teacher_is_refused(chat_project):
    result = cli("train", chat_project, "--method", "distill", "--set", "max_steps=2")
    assert result.returncode == 1 and "teacher: distillation needs a teacher model" in result.stderr
    result = cli("train", chat_project, *SHORT, "--method", "gkd", "--set", "teacher=run:nope")
    assert result.returncode == 1
    error = of_type(events(chat_project, result.stdout.splitlines()[0].strip()), ev.Error)[-1]
    assert error.kind == "bad_spec" and error.message == "teacher: Project 'distil' has no run 'nope'."


def test_gkd_trains_on_the_students_own_answers(chat_project, teacher_model):
    run_id, got, seconds = train(chat_project, "--method", "gkd", "--set", f"teacher={teacher_model}",
                                 "--set", "max_steps=2", "--set", "batch_size=2", "--set", "lmbda=1",
                                 "--set", "max_new_tokens=8", "--set", "mode=full")
    logs = of_type(got, ev.Log)
    assert [log.step for log in logs] == [1, 2] and all(math.isfinite(log.loss) and log.loss >= 0 for log in logs)
    assert (locations.run_dir(chat_project, run_id) / "model" / "config.json").exists()
    print(f"gkd: 2 steps in {seconds:.1f} s (whole run)")
