"""The memory estimate against the real worker's measured peak, for every training method, on the tiny model.

On the tiny model the peak is mostly the runtime (the interpreter and libraries, a term of the estimate)
and the vocabulary logits; the data is made so each batch is the estimate's worst case (records as long as
max_length allows), and one case of short records checks that the estimate follows the data's longest
record rather than max_length. bench/estimate.py runs the same comparison on the embedded model."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import write_jsonl
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.registry.estimate import estimate
from workbench.registry.measure import peak
from workbench.registry.specs import make_spec
from workbench.run.spec import Runtime

pytestmark = pytest.mark.e2e

BOUND = 0.25
CITATION = "Eleanor Crowley (1955). The Island and the Harbour: Notes from the Field. New Haven: Yale UP. "
ANSWER = '{"title": "The Island and the Harbour", "author": "Crowley, Eleanor", "year": 1955}'
SHARED = {"batch_size": "2", "max_length": "256", "eval_steps": "0", "save_steps": "100", "eval_fraction": "0",
          "max_steps": "1"}
CASES = {  # case (its method, then what differs): (dataset, values)
    "sft": ("chat", {}),
    "sft-short": ("short_chat", {}),  # records of about 40 tokens: the estimate's length is theirs
    "classifier": ("labelled", {}),
    "reward": ("pairs", {}),
    "dpo": ("long_pairs", {}),
    "distill": ("chat", {"teacher": "base"}),
    "gkd": ("chat", {"teacher": "base", "max_new_tokens": "16"}),
    "grpo": ("prompts", {"rewards": "length", "num_generations": "2", "max_completion_length": "16"}),
    "rloo": ("prompts", {"rewards": "length", "num_generations": "2", "max_completion_length": "16"}),
    "ppo": ("prompts", {"rewards": "length", "max_new_tokens": "16", "mini_batch_size": "2"}),
}


def filled(model, tokens: int) -> str:
    """Citations enough that the chat record (with its answer) takes about `tokens` tokens."""
    from workbench import models

    tokenizer = models.load_tokenizer(model)
    text = CITATION
    while True:
        more = text + CITATION[: len(CITATION) // 4]
        messages = [{"role": "user", "content": more}, {"role": "assistant", "content": ANSWER}]
        if len(tokenizer.apply_chat_template(messages, tokenize=True)["input_ids"]) > tokens:
            return text
        text = more


@pytest.fixture(scope="module")
def measured_project(tiny_model, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("estimate")
        mp.setenv("WORKBENCH_HOME", str(folder / "projects"))
        projects.create("peaks", base_model=str(tiny_model))
        long = filled(tiny_model, 248)  # a chat record a few tokens short of max_length: each batch is full
        user = [{"role": "user", "content": long}]
        rows = {
            "chat": [{"messages": user + [{"role": "assistant", "content": ANSWER}]} for _ in range(8)],
            "short_chat": [{"messages": [{"role": "user", "content": CITATION[: 20 + 8 * i]},
                                         {"role": "assistant", "content": ANSWER}]} for i in range(8)],
            "labelled": [{"text": long, "label": "old" if i % 2 else "new"} for i in range(8)],
            "pairs": [{"prompt": [{"role": "user", "content": CITATION}], "chosen": [{"role": "assistant",
                       "content": ANSWER}], "rejected": [{"role": "assistant", "content": ANSWER[::-1]}]}] * 8,
            "long_pairs": [{"prompt": user, "chosen": [{"role": "assistant", "content": ANSWER * 4}],
                            "rejected": [{"role": "assistant", "content": ANSWER[::-1] * 4}]}] * 8,
            "prompts": [{"prompt": user, "answer": ANSWER}] * 8,
        }
        for name, records in rows.items():
            import_file("peaks", write_jsonl(folder / f"{name}.jsonl", [json.loads(json.dumps(r)) for r in records]),
                        name=name)
        yield "peaks"


@pytest.mark.parametrize("case", sorted(CASES))
def test_estimate_is_within_a_quarter_of_the_measured_peak(measured_project, case):
    from workbench import registry
    from workbench.params import describe

    method = case.split("-")[0]
    dataset, values = CASES[case]
    known = {info.name for info in describe(registry.get(method).params)}
    chosen = {**{k: v for k, v in SHARED.items() if k in known}, **values}
    report = estimate(measured_project, method, chosen, device="cpu", datasets=[dataset])
    if case == "sft-short":
        assert report["step"].endswith("tokens (the longest record; max_length 256)"), report["step"]
    expected = next(m for m in report["modes"] if m["mode"] == report["chosen"])["memory"]
    spec = make_spec(measured_project, method, chosen, datasets=[dataset], runtime=Runtime(threads=1, device="cpu"))
    got = peak(spec, timeout=900)
    assert got.state == "completed", got.state
    assert got.peak_bytes > 0, "the worker reported no peak"
    ratio = expected / got.peak_bytes
    assert 1 - BOUND <= ratio <= 1 + BOUND, (f"{method}: estimate {expected / 2**20:.0f} MiB, measured "
                                             f"{got.peak_bytes / 2**20:.0f} MiB ({report['step']})")
