"""The pieces of the `sample` events: when a step shows samples, the advantages read from TRL's trainer,
and the held-out prompts of SFT and GKD rows."""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace

from workbench.methods.kit.samples import (
    due,
    prompt_and_reference,
    prompt_text,
    trainer_advantages,
)


def test_samples_show_at_step_one_then_every_n_steps():
    assert [s for s in range(1, 13) if due(s, 5)] == [1, 5, 10]
    assert not any(due(s, 0) for s in range(1, 13))


def test_a_conversation_shows_each_turn_with_its_role():
    assert prompt_text("Hi") == "Hi"
    assert prompt_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]) == \
        "system: Be brief.\nuser: Hi"


def trainer(completions, advantages, processes=1, index=0):
    logs = {"completion": deque(completions, maxlen=8), "advantages": deque(advantages, maxlen=8)}
    return SimpleNamespace(_logs=logs, accelerator=SimpleNamespace(num_processes=processes, process_index=index))


def test_the_advantages_are_the_trainer_s_for_these_very_completions():
    batch = ["c", "d"]
    assert trainer_advantages(trainer(["a", "b", "c", "d"], [0.1, 0.2, 0.3, 0.4]), batch) == [0.3, 0.4]
    # two processes: this one's share is its slice of the gathered batch
    assert trainer_advantages(trainer(["c", "d", "e", "f"], [0.3, 0.4, 0.5, 0.6], processes=2), batch) == [0.3, 0.4]
    assert trainer_advantages(trainer(["a", "b", "c", "d"], [0.1, 0.2, 0.3, 0.4], processes=2, index=1), batch) == \
        [0.3, 0.4]
    # a record that does not hold these completions gives no advantage rather than someone else's
    assert trainer_advantages(trainer(["a", "b", "x", "d"], [0.1, 0.2, 0.3, 0.4]), batch) is None
    assert trainer_advantages(SimpleNamespace(), batch) is None


def test_a_held_out_row_gives_the_prompt_the_model_continues_and_the_reference(tiny_model):
    from workbench import models

    tokenizer = models.load_tokenizer(tiny_model)
    chat = [{"role": "user", "content": "Catalogue item 7."}, {"role": "assistant", "content": "A book."}]
    prompt, reference = prompt_and_reference({"messages": chat}, tokenizer)  # a GKD row
    assert reference == "A book."
    assert prompt == list(tokenizer.apply_chat_template(chat[:1], add_generation_prompt=True, tokenize=True,
                                                        return_dict=True)["input_ids"])
    answer = tokenizer("A book.", add_special_tokens=False)["input_ids"]
    row = {"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer}  # a tokenised SFT row
    assert prompt_and_reference(row, tokenizer) == (prompt, "A book.")
    masked = {"input_ids": prompt + answer, "completion_mask": [0] * len(prompt) + [1] * len(answer)}
    assert prompt_and_reference(masked, tokenizer) == (prompt, "A book.")


def test_sft_s_greedy_answers_are_transformers_greedy_answers_one_prompt_at_a_time(tiny_model):
    """The held-out answers come from the batched path (`workbench.generate`): prompts of different lengths in
    one left-padded batch give what plain `model.generate` gives each prompt alone, cut after the first stop
    token, and the model is back in training mode after."""
    import torch

    from workbench import models
    from workbench.methods.kit.samples import greedy_answers

    torch.set_num_threads(1)
    tokenizer = models.load_tokenizer(tiny_model)
    model = models.load_causal_lm(tiny_model).train()
    prompts = [tokenizer(t)["input_ids"] for t in ("Hi", "A much longer question, with many more words in it.")]
    plain = []
    with torch.no_grad():
        for prompt in prompts:
            out = model.eval().generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=8,
                                        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            plain.append(out[0, len(prompt):].tolist())
    model.train()
    assert greedy_answers(model, tokenizer, prompts, 8, [tokenizer.eos_token_id]) == plain
    assert model.training
    # a stop token ends an answer, kept: stopping at each prompt's first greedy token gives that one token
    firsts = sorted({answer[0] for answer in plain})
    assert greedy_answers(model, tokenizer, prompts, 8, firsts) == [answer[:1] for answer in plain]
