"""The shared steps of the training recipes (methods/kit/recipe.py): what `start` checks before the
base is touched, and how `train_to_end` resumes, evaluates once at the end and saves."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from workbench.methods.grpo_params import GRPOParams
from workbench.methods.kit.recipe import start, train_to_end
from workbench.methods.sft_params import SFTParams
from workbench.params import ParamError, build
from workbench.rewards.setup import check_group
from workbench.run import events as ev
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec, Runtime


class RecordingTrainer:
    """The part of a transformers Trainer that `train_to_end` drives, recording each call."""

    args = SimpleNamespace(should_save=True)  # the process that saves (one process: this one)

    def __init__(self, job: JobContext, eval_dataset=None, steps: int = 4, eval_every: int = 0, stop: bool = False):
        self.job, self.eval_dataset = job, eval_dataset
        self.steps, self.eval_every, self.stop = steps, eval_every, stop
        self.calls: list[tuple] = []
        import torch

        self.model = torch.nn.Linear(4, 4)  # what the final save's space check measures

    def train(self, resume_from_checkpoint=None):
        self.calls.append(("train", resume_from_checkpoint))
        self.job.training = True
        for step in range(1, self.steps + 1):
            self.job.last_step = step
            if self.eval_every and step % self.eval_every == 0:
                self.job.last_eval_step = step
        self.job.stop_requested = self.stop

    def evaluate(self):
        self.calls.append(("evaluate",))

    def save_model(self, folder: str):
        self.calls.append(("save_model", folder))


class RecordingTokenizer:
    def __init__(self):
        self.saved: list[str] = []

    def save_pretrained(self, folder: str):
        self.saved.append(folder)


def job_in(tmp_path, params: dict, resume: str | None = None) -> JobContext:
    spec = JobSpec(id="r1", project="p", method="sft", base_model=str(tmp_path / "no-model-here"),
                   params=params, train=[], runtime=Runtime(device="cpu", precision="fp32"))
    return JobContext(spec=spec, run_dir=tmp_path, writer=ev.EventWriter(tmp_path / "events.jsonl"),
                      resume_checkpoint=resume)


def statuses(tmp_path) -> list[str]:
    return [e.message for e in ev.read_all(tmp_path / "events.jsonl") if isinstance(e, ev.Status)]


@pytest.mark.parametrize(("mode", "folder"), [("lora", "adapter"), ("full", "model")])
def test_train_to_end_resumes_evaluates_the_last_step_and_saves(tmp_path, mode, folder):
    job = job_in(tmp_path, {}, resume="checkpoints/checkpoint-2")
    trainer, tokenizer = RecordingTrainer(job, eval_dataset=["row"], steps=4, eval_every=3), RecordingTokenizer()
    out = train_to_end(trainer, job, build(SFTParams, {"mode": mode}), tokenizer)
    assert out == tmp_path / folder
    assert trainer.calls == [("train", "checkpoints/checkpoint-2"), ("evaluate",), ("save_model", str(out))]
    assert tokenizer.saved == [str(out)]
    assert statuses(tmp_path) == ["Training", f"Saving {folder}"]


def test_train_to_end_evaluates_only_an_eval_set_not_evaluated_at_the_last_step(tmp_path):
    job = job_in(tmp_path, {})
    already = RecordingTrainer(job, eval_dataset=["row"], steps=4, eval_every=2)
    train_to_end(already, job, build(SFTParams, {}), RecordingTokenizer())
    assert [c[0] for c in already.calls] == ["train", "save_model"]
    job = job_in(tmp_path, {})
    no_eval = RecordingTrainer(job, eval_dataset=None, steps=4)
    train_to_end(no_eval, job, build(SFTParams, {}), RecordingTokenizer())
    assert [c[0] for c in no_eval.calls] == ["train", "save_model"]


def test_a_run_stopped_while_training_saves_nothing_more(tmp_path):
    job = job_in(tmp_path, {})
    trainer, tokenizer = RecordingTrainer(job, eval_dataset=["row"], stop=True), RecordingTokenizer()
    assert train_to_end(trainer, job, build(SFTParams, {}), tokenizer) is None
    assert [c[0] for c in trainer.calls] == ["train"] and tokenizer.saved == []


def test_start_refuses_bad_params_before_the_base_is_prepared(tmp_path):
    job = job_in(tmp_path, {"batch_size": "3", "grad_accum": "1", "num_generations": "4"})
    with pytest.raises(ParamError, match="must be a multiple of"):
        start(job.spec, job, GRPOParams, check_group)
    job = job_in(tmp_path, {"mode": "qlora"})
    with pytest.raises(ParamError, match="needs a CUDA GPU"):
        start(job.spec, job, SFTParams)
    assert "Preparing the base model" not in statuses(tmp_path)
