"""The GPU path in real runs on the tiny model, where a CUDA GPU is at hand (skipped elsewhere): what the rest
of the suite, which hides the GPUs, cannot see. Each run resolves its device, precision and fast path for
the GPU and says so in job.toml, trains with finite, falling losses and reports its GPU peak."""

from __future__ import annotations

import importlib.util
import math

import pytest

from tests.e2e.conftest import cli, events, make_constant_project, of_type, write_jsonl
from workbench import locations
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.evaluate import job as eval_job
from workbench.files import read_toml
from workbench.run import events as ev
from workbench.run import layout

pytestmark = [pytest.mark.e2e, pytest.mark.gpu]

SHORT = ["--wait", "--set", "warmup=0", "--set", "save_steps=100", "--set", "learning_rate=0.01"]
NO_EVAL = ["--set", "eval_fraction=0"]  # SFT's held-out share of the training records


def trained(project: str, *args: str, sft: bool = True) -> tuple[str, dict, list[ev.Event]]:
    """(run id, job.toml, events) of a completed run on the GPU."""
    result = cli("train", project, *SHORT, *(NO_EVAL if sft else []), *args, timeout=600)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.split()[0]
    got = events(project, run_id)
    finished = of_type(got, ev.Finished)
    assert finished and finished[-1].reason == "completed", [e for e in got if isinstance(e, (ev.Error, ev.Status))]
    spec = read_toml(locations.run_dir(project, run_id) / layout.SPEC)
    assert spec["runtime"]["device"] == "cuda"
    assert finished[-1].peak_gpu_memory > 0  # the CUDA allocator's peak, reported
    losses = [log.loss for log in of_type(got, ev.Log)]
    assert losses and all(math.isfinite(x) for x in losses)
    return run_id, spec, got


def test_lora_trains_in_sixteen_bits_with_the_fast_path_chosen_for_the_gpu(gpu, tiny_project):
    run_id, spec, got = trained(tiny_project, "--set", "max_steps=8", "--set", "batch_size=4")
    params, notes = spec["params"], spec["notes"]
    assert spec["runtime"]["precision"] in ("bf16", "fp16")  # bf16 from Ampere on
    assert "Optimiser: torch's fused AdamW (CUDA)." in notes
    flash = params["attention"] == "flash_attention_2"
    assert params["attention"] in ("flash_attention_2", "sdpa")
    assert params["packing"] == ("on" if flash else "off")  # packed where a varlen kernel attends per record
    assert params["liger"] == ("on" if importlib.util.find_spec("liger_kernel") else "off")
    losses = [log.loss for log in of_type(got, ev.Log)]
    assert losses[-1] < losses[0]


def test_packing_on_the_gpu_trains_more_records_a_step(gpu, tiny_project):
    _, spec, got = trained(tiny_project, "--set", "max_steps=2", "--set", "batch_size=2", "--set", "packing=on")
    assert spec["params"]["packing"] == "on"
    assert of_type(got, ev.Log)[-1].tokens_seen > 2 * 2 * 60  # two packed rows hold more than two records


def test_qlora_trains_on_a_four_bit_base(gpu, tiny_project):
    if importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("bitsandbytes is not installed")
    run_id, spec, _ = trained(tiny_project, "--set", "mode=qlora", "--set", "max_steps=4", "--set", "batch_size=4")
    assert spec["params"]["mode"] == "qlora"
    adapter = locations.run_dir(tiny_project, run_id) / layout.ADAPTER
    assert (adapter / "adapter_config.json").exists()


@pytest.mark.parametrize("mode", ["full", "last_layer"])
def test_full_and_last_layer_train_on_the_gpu(gpu, tiny_project, mode):
    run_id, _, got = trained(tiny_project, "--set", f"mode={mode}", "--set", "max_steps=4",
                             "--set", "batch_size=4", "--set", "learning_rate=0.001")
    assert of_type(got, ev.TrainBegin)[0].trainable_params > 0
    assert (locations.run_dir(tiny_project, run_id) / layout.MODEL / "config.json").exists()


def test_grpo_generates_and_learns_on_the_gpu(gpu, home, tiny_model, tmp_path):
    projects.create("rl", base_model=str(tiny_model))
    import_file("rl", write_jsonl(tmp_path / "prompts.jsonl",
                                  [{"prompt": f"Say something about {i}.", "answer": str(i)} for i in range(16)]))
    _, spec, got = trained("rl", "--method", "grpo", "--set", "max_steps=3", "--set", "batch_size=8",
                           "--set", "num_generations=4", "--set", "max_completion_length=8",
                           "--set", "rewards=length", "--set", "length_max=30", sft=False)
    assert spec["job"]["method"] == "grpo"
    rewards = [log.metrics["reward"] for log in of_type(got, ev.Log)]
    assert len(rewards) == 3 and all(math.isfinite(r) for r in rewards)


def test_two_gpu_ranks_train_like_one(gpu, cuda_here, tiny_project):
    if cuda_here < 2:
        pytest.skip("needs two CUDA GPUs")
    one = trained(tiny_project, "--processes", "1", "--set", "max_steps=4", "--set", "batch_size=4")
    two = trained(tiny_project, "--processes", "2", "--set", "max_steps=4", "--set", "batch_size=2")
    alone, ranked = ([(log.step, log.loss) for log in of_type(got, ev.Log)] for _, _, got in (one, two))
    assert [s for s, _ in ranked] == [s for s, _ in alone]
    for (_, a), (_, b) in zip(alone, ranked):
        assert b == pytest.approx(a, rel=0.02)  # bf16: the two reduce in different orders
    assert two[1]["runtime"]["processes"] == 2


def test_a_run_is_evaluated_on_the_gpu(gpu, home, tiny_model, tmp_path):
    project = make_constant_project("const", tiny_model, tmp_path)
    run_id, _, _ = trained(project, "--set", "max_steps=2", "--set", "batch_size=4")
    result = cli("eval", project, run_id, "--limit", "4", timeout=600)
    assert result.returncode == 0, result.stderr
    assert next(line for line in result.stdout.splitlines() if line.startswith("metric")).split()[-1] == run_id
    (job,) = eval_job.jobs(project)
    assert read_toml(job.path / layout.SPEC)["runtime"]["device"] == "cuda"
