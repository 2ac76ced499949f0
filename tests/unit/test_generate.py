"""The one batched generation path (`workbench.generate`) on the tiny model: a batch gives what one prompt
at a time gives, greedy and sampled; each sequence ends at its own stop token; a seed repeats its answers;
and the ranking sampler built on it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from workbench.generate import Sampling, generate

TEXTS = ["Hi", "A much longer question, with many more words in it than the first.", "Mid length one"]
WARM = Sampling(temperature=1.0, top_p=0.95, top_k=50)


@pytest.fixture(scope="module")
def lm(tiny_model):
    import torch

    from workbench import models

    torch.set_num_threads(1)
    tokenizer = models.load_tokenizer(tiny_model)
    model = models.load_causal_lm(tiny_model).eval()
    prompts = [tokenizer(t)["input_ids"] for t in TEXTS]
    return SimpleNamespace(model=model, tokenizer=tokenizer, prompts=prompts, pad=tokenizer.pad_token_id,
                           eos=tokenizer.eos_token_id, folder=tiny_model)


def run(lm, prompts, max_new_tokens=10, **kw):
    kw.setdefault("stop_ids", [lm.eos])
    return generate(lm.model, prompts, max_new_tokens, pad_id=lm.pad, **kw)


def test_a_left_padded_greedy_batch_gives_each_prompt_s_own_greedy_answer(lm):
    import torch

    batched = run(lm, lm.prompts)
    assert batched == [run(lm, [p])[0] for p in lm.prompts]
    for prompt, (answer,) in zip(lm.prompts, batched):  # the definition: transformers, one unpadded prompt
        with torch.inference_mode():
            out = lm.model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=10,
                                    eos_token_id=lm.eos, pad_token_id=lm.pad)
        assert answer == out[0, len(prompt):].tolist()[:len(answer)] and len(answer) == 10


def test_sampled_answers_do_not_depend_on_the_batch_and_a_seed_repeats_them(lm):
    batched = run(lm, lm.prompts, n=3, sampling=WARM, seeds=[7, 8, 9])
    alone = [run(lm, [p], n=3, sampling=WARM, seeds=[s])[0] for p, s in zip(lm.prompts, [7, 8, 9])]
    assert batched == alone
    assert run(lm, lm.prompts[:1], n=3, sampling=WARM, seeds=[7]) == [batched[0]]
    group = batched[0]
    assert len(group) == 3 and len({tuple(a) for a in group}) == 3  # a group's candidates differ
    assert run(lm, lm.prompts[:1], n=3, sampling=WARM, seeds=[70])[0] != group  # another seed, other answers
    with pytest.raises(ValueError, match="one seed per prompt"):
        run(lm, lm.prompts, sampling=WARM, seeds=[1])


def test_each_sequence_ends_at_its_own_stop_token_and_the_others_go_on(lm):
    free = run(lm, lm.prompts, max_new_tokens=12, stop_ids=[], sampling=WARM, seeds=[1, 2, 3])
    first = free[0][0]
    stop = first[3]  # prompt 0's fourth token ends it; the other prompts continue unless they meet it
    assert stop not in first[:3]
    cut = run(lm, lm.prompts, max_new_tokens=12, stop_ids=[stop], sampling=WARM, seeds=[1, 2, 3])
    assert cut[0][0] == first[:4]
    for (full,), (answer,) in zip(free[1:], cut[1:]):
        end = full.index(stop) + 1 if stop in full else len(full)
        assert answer == full[:end]
    assert any(len(answer) == 12 for (answer,) in cut[1:])  # not everything stopped with prompt 0

    # Within one prompt's group too: row 0 is the same draw (same seed) and ends there, its siblings go on.
    group_free = run(lm, lm.prompts[:1], max_new_tokens=12, n=3, stop_ids=[], sampling=WARM, seeds=[1])[0]
    group_cut = run(lm, lm.prompts[:1], max_new_tokens=12, n=3, stop_ids=[stop], sampling=WARM, seeds=[1])[0]
    assert group_free[0] == first and group_cut[0] == first[:4]
    for full, answer in zip(group_free[1:], group_cut[1:]):
        assert answer == full[:full.index(stop) + 1 if stop in full else len(full)]
    assert any(len(answer) == 12 for answer in group_cut[1:])


def test_a_stop_request_ends_generation_early(lm):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) >= 3

    (answer,), = run(lm, lm.prompts[:1], max_new_tokens=50, stop=stop)
    assert len(answer) < 50


def test_the_ranking_sampler_samples_prompts_together_as_it_would_one_by_one(lm):
    from workbench.params import build
    from workbench.ranking.sample import Sampler, group_seed, resolve_auto
    from workbench.ranking.sample_params import SampleParams
    from workbench.run.spec import JobSpec, Runtime

    spec = JobSpec(id="s", project="p", method="sample", base_model="tiny", params={}, train=[],
                   runtime=Runtime(device="cpu"))
    p = build(SampleParams, {})
    resolve_auto(p, spec)
    assert (p.max_new_tokens, p.prompt_batch) == (64, 1) and spec.params == {"max_new_tokens": 64, "prompt_batch": 1}
    assert "max_new_tokens=64, prompt_batch=1 (auto)" in spec.notes[-1]
    p.max_new_tokens = 8
    gpu = JobSpec(id="g", project="p", method="sample", base_model="tiny", params={"max_new_tokens": 100}, train=[],
                  runtime=Runtime(device="cuda"))
    q = build(SampleParams, gpu.params)
    resolve_auto(q, gpu)
    assert (q.max_new_tokens, q.prompt_batch) == (100, 8)  # a value given stays

    sampler = Sampler(lm.folder, "base", "float32", "cpu")
    prompts = ["Name a colour.", [{"role": "user", "content": "Name a fruit, please, and say why."}]]
    seeds = [group_seed(p.seed, i, 0) for i in range(2)]
    together = sampler.sample(prompts, 3, p, seeds, stop=lambda: False)
    assert together == [sampler.sample([q], 3, p, [s], stop=lambda: False)[0] for q, s in zip(prompts, seeds)]
    assert together == sampler.sample(prompts, 3, p, seeds, stop=lambda: False)  # the same seed, the same cards
    for candidates, tokens in together:
        assert len(candidates) == 3 and 3 <= tokens <= 3 * 8
        assert all(isinstance(c["text"], str) and c["source"] == "base" for c in candidates)
    # an answer that the token limit ended (no stop token within 8 tokens) is marked cut, and only such a one
    from workbench.generate import Sampling, generate
    from workbench.ranking.sample import TOP_K

    rows = generate(sampler.model, [sampler.encode(q) for q in prompts], 8, n=3, stop_ids=sampler.stop_ids,
                    pad_id=sampler.tokenizer.pad_token_id, sampling=Sampling(p.temperature, p.top_p, TOP_K), seeds=seeds)
    for (candidates, _), answers in zip(together, rows):
        assert [c.get("cut", False) for c in candidates] == [len(a) == 8 and a[-1] not in sampler.stop_ids
                                                            for a in answers]
    assert any(c.get("cut") for group, _ in together for c in group)  # the random tiny model rarely stops


def test_a_cpu_session_leaves_a_core_to_the_ranking_screen(monkeypatch):
    import torch

    from workbench.ranking import sample
    from workbench.run.spec import JobSpec, Runtime

    before = torch.get_num_threads()
    monkeypatch.setattr(sample.os, "cpu_count", lambda: 2)
    try:
        cpu = JobSpec(id="c", project="p", method="sample", base_model="tiny", params={}, train=[],
                      runtime=Runtime(device="cpu", threads=2))
        sample.leave_a_core(cpu)
        assert cpu.runtime.threads == 1 and torch.get_num_threads() == 1 and "a core is left" in cpu.notes[-1]
        gpu = JobSpec(id="g", project="p", method="sample", base_model="tiny", params={}, train=[],
                      runtime=Runtime(device="cuda", threads=2))
        sample.leave_a_core(gpu)
        assert gpu.runtime.threads == 2 and not gpu.notes
    finally:
        torch.set_num_threads(before)
