"""Loading a file never runs code from it: tensors and plain data only.

PPO resumed with `torch.load(..., weights_only=False)`, so a checkpoint folder someone handed over
could run any code when resumed. The engine and the app are scanned for every way to unpickle (and
for remote model code); PPO's own checkpoints still round-trip, and a booby-trapped one is refused."""

from __future__ import annotations

import ast
import pickle
import random
from pathlib import Path

import pytest

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("workbench", "screens")
UNPICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_loads(source: str) -> list[tuple[int, str]]:
    """(line, what) for each way `source` could run code from a file it loads."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] in UNPICKLERS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNPICKLERS:
            found.append((node.lineno, f"from {node.module} import"))
        elif isinstance(node, ast.ImportFrom) and node.module == "torch" and any(a.name == "load" for a in node.names):
            found.append((node.lineno, "from torch import load (use torch.load(..., weights_only=True))"))
        elif isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if "weights_only" in keywords and not _true(keywords["weights_only"]):
                found.append((node.lineno, f"{func}(weights_only={ast.unparse(keywords['weights_only'])})"))
            if func == "torch.load" and not _true(keywords.get("weights_only")):
                found.append((node.lineno, "torch.load without weights_only=True"))
            if func.endswith(("read_pickle", "unsafe_load")) or (func.endswith("yaml.load") and "Loader" not in keywords):
                found.append((node.lineno, func))
            for flag in ("allow_pickle", "trust_remote_code"):
                if _true(keywords.get(flag)):
                    found.append((node.lineno, f"{func}({flag}=True)"))
    return found


def test_the_scan_finds_each_unsafe_load():
    bad = """
import pickle
from dill import loads
import torch
from torch import load
torch.load(path)
torch.load(path, weights_only=False)
torch.load(path, map_location="cpu", weights_only=flag)
np.load(path, allow_pickle=True)
pd.read_pickle(path)
yaml.load(text)
yaml.unsafe_load(text)
AutoModel.from_pretrained(path, trust_remote_code=True)
"""
    assert [line for line, _ in unsafe_loads(bad)] == [2, 3, 5, 6, 7, 7, 8, 8, 9, 10, 11, 12, 13]
    good = """
import torch
torch.load(path, map_location="cpu", weights_only=True)
np.load(path)
yaml.load(text, Loader=yaml.SafeLoader)
json.loads(text)
"""
    assert unsafe_loads(good) == []


def test_the_engine_and_the_app_load_no_pickles():
    found = []
    for package in SCANNED:
        for path in sorted((REPO / package).rglob("*.py")):
            found += [f"{path.relative_to(REPO)}:{line}: {what}" for line, what in unsafe_loads(path.read_text())]
    assert not found, "\n".join(found)


class _Payload:
    """What a booby-trapped checkpoint holds: unpickling it would create a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class _Saves:
    """Stands in for the policy and the tokenizer, which save with `save_pretrained`."""

    def save_pretrained(self, folder: str) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)


def _ppo_with_a_checkpoint(tmp_path):
    import torch

    from workbench.methods import ppo, ppo_core
    from workbench.run import events as ev
    from workbench.run.context import JobContext
    from workbench.run.spec import JobSpec

    torch.manual_seed(0)
    head = ppo.ValueHead(4)
    models = ppo.PPOModels(policy=_Saves(), head=head, reference=None, kl=ppo_core.FixedKL(0.2))
    models.optimizer = torch.optim.AdamW(head.parameters(), lr=0.1)
    head(torch.randn(3, 4)).sum().backward()
    models.optimizer.step()  # the optimiser has state (moments, step) to save
    spec = JobSpec(id="r", project="p", method="ppo", base_model="none", params={}, train=[])
    job = JobContext(spec=spec, run_dir=tmp_path, writer=ev.EventWriter(tmp_path / "events.jsonl"))
    ppo.save_checkpoint(models, _Saves(), job, step=3, tokens_seen=120, max_steps=10)
    return models, job.checkpoints_dir / "checkpoint-3"


def test_a_ppo_checkpoint_resumes_from_tensors_and_plain_data(tmp_path):
    import torch

    from workbench.methods import ppo, ppo_core

    saved, folder = _ppo_with_a_checkpoint(tmp_path)
    expected_python, expected_torch = random.random(), torch.rand(3)

    fresh = ppo.PPOModels(policy=_Saves(), head=ppo.ValueHead(4), reference=None, kl=ppo_core.FixedKL(0.05))
    fresh.optimizer = torch.optim.AdamW(fresh.head.parameters(), lr=0.1)
    state = ppo.restore(fresh, str(folder))
    assert state == {"step": 3, "tokens_seen": 120} and fresh.kl.value == 0.2
    assert torch.equal(fresh.head.linear.weight, saved.head.linear.weight)
    moments = fresh.optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(moments, saved.optimizer.state_dict()["state"][0]["exp_avg"])
    assert (random.random(), torch.rand(3).tolist()) == (expected_python, expected_torch.tolist())


def test_a_booby_trapped_ppo_checkpoint_is_refused_and_runs_nothing(tmp_path):
    import torch

    from workbench.methods import ppo, ppo_core

    _, folder = _ppo_with_a_checkpoint(tmp_path)
    marker = tmp_path / "code-ran"
    rng = torch.load(folder / "rng_state.pth", weights_only=True)
    torch.save({**rng, "python": _Payload(marker)}, folder / "rng_state.pth")

    fresh = ppo.PPOModels(policy=_Saves(), head=ppo.ValueHead(4), reference=None, kl=ppo_core.FixedKL(0.05))
    fresh.optimizer = torch.optim.AdamW(fresh.head.parameters(), lr=0.1)
    with pytest.raises(pickle.UnpicklingError):
        ppo.restore(fresh, str(folder))
    assert not marker.exists()
