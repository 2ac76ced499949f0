"""SFT's greedy answers to held-out prompts at each eval, end to end on the tiny model."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ANSWER, cli, events, make_constant_project, of_type
from workbench import locations
from workbench.run import events as ev

pytestmark = pytest.mark.e2e


def test_sft_shows_the_model_s_greedy_answers_beside_the_reference_at_each_eval(home, tiny_model, tmp_path):
    project = make_constant_project("answers", tiny_model, tmp_path)
    result = cli("train", project, "--wait", "--set", "mode=full", "--set", "max_steps=4", "--set", "eval_steps=2",
                 "--set", "batch_size=4", "--set", "learning_rate=1e-2", "--set", "save_steps=100",
                 "--set", "sample_count=2", "--set", "sample_max_tokens=6")
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0].strip()
    got = events(project, run_id)
    assert of_type(got, ev.Finished)[-1].reason == "completed"
    samples = of_type(got, ev.Sample)
    assert [s.step for s in samples] == [2, 2, 4, 4]  # two held-out prompts at each eval
    assert "user\nCatalogue item 100.\nassistant" in samples[0].prompt  # what training conditions on
    assert "user\nCatalogue item 101.\nassistant" in samples[1].prompt
    assert all(s.reference == ANSWER for s in samples)

    # the answers at the last eval are the saved model's own greedy answers
    import torch

    from workbench import models
    from workbench.data.render import stop_token_ids

    folder = locations.run_dir(project, run_id) / "model"
    tokenizer, model = models.load_tokenizer(folder), models.load_causal_lm(folder).eval()
    for sample, item in zip(samples[2:], (100, 101)):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": f"Catalogue item {item}."}],
                                            add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            out = model.generate(**ids, do_sample=False, max_new_tokens=6, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=sorted(stop_token_ids(tokenizer, folder)))
        answer = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        assert answer and sample.completion == answer
