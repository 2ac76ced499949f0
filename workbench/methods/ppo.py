"""Proximal policy optimisation from a reward model and/or rule rewards: classic RLHF PPO.

Each iteration samples one completion per prompt of a batch and scores it. The score becomes
per-token rewards: -kl_coef * KL(policy || reference) on every token plus the score on the
last one (Ziegler et al. 2019). GAE turns them and the value head's estimates into
advantages; ppo_epochs passes of minibatch updates then apply the clipped policy and value
losses (the arithmetic is in `ppo_core`). The KL coefficient is fixed or adapts to target_kl.
At step 1 and every `sample_every` iterations, `sample_count` completions become sample events
with each reward's score, the total and the advantage; `reward_errors/<name>` counts the
completions a reward raised on.

The models. The policy is the base with LoRA (or every weight, mode=full). The value head is
a linear layer on the policy's last hidden state, trained with it: one trunk, so no second
model in memory, at the price of the value loss also shaping the adapter (vf_coef weighs it).
The reference is the base with the adapter switched off (LoRA) or a frozen copy (full).
Dropout stays off, so the rollout and the updates compute log-probabilities with the same
function, as the policy ratio assumes.

A checkpoint holds the adapter (or model), the value head, the optimiser, the KL coefficient
and the random state: a resumed run goes on as if it had never stopped.

The recipe: params -> tokenizer -> prompts -> rewards -> models -> resume -> loop -> save.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from workbench import models
from workbench import params as params_mod
from workbench.data.errors import DataError
from workbench.data.prep import read_prompt_rows
from workbench.data.prompts import has_chat_template
from workbench.methods import ppo_core as core
from workbench.methods.kit.samples import due, sample_event
from workbench.methods.kit.tracking import Tracker
from workbench.methods.kit.train_args import dtype_name, peft_config, prepare_base
from workbench.methods.ppo_params import PPOParams
from workbench.params import ParamError
from workbench.rewards.scoring import failure_counts
from workbench.run import events as ev
from workbench.run import layout
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec

RESERVED_COLUMNS = ("prompt", "prompts", "completions", "completion_ids")


def run(spec: JobSpec, job: JobContext):
    # 1. Parameters, checked against their bounds; a run needs something to score with.
    p = params_mod.build(PPOParams, spec.params)
    if not (p.reward_model.strip() or p.rewards.strip()):
        raise ParamError("PPO needs a reward: set reward_model (a reward run's id or a model folder) "
                         "and/or rewards (e.g. rewards=length, or functions of reward_file).")
    runtime = spec.runtime
    torch.manual_seed(runtime.seed)
    tracker = Tracker(p, spec.project, job.run_dir)  # report_to: TensorBoard / Trackio beside the events

    # 2. Tokenizer.
    folder, tokenizer = prepare_base(spec, job)

    # 3. Prompts (`workbench.data.prompts`: a user turn where the model has a chat template), tokenized once.
    job.status("Preparing the prompts")
    rows = read_prompt_rows(spec.train, runtime.seed, chat=has_chat_template(tokenizer))
    prompt_ids = encode_prompts(rows, tokenizer, p.max_prompt_length)
    job.data_counts = (len(rows), 0)
    job.check_stop()

    # 4. Rewards: the rule rewards and the reward model, added up by `combine`.
    job.status("Loading the rewards")
    rewards = load_rewards(spec, p, tokenizer, rows[0])
    job.check_stop()

    # 5. Models: policy (+ adapter), value head, reference; the optimiser over what trains.
    job.status(f"Loading {models.describe(spec.base_model)}")
    ppo = load_models(p, folder, spec, job.resume_checkpoint)
    stop_ids = stop_token_ids(ppo.policy, tokenizer)
    job.check_stop()

    # 6. Resume: weights were loaded above; here the value head, optimiser, KL coefficient and RNG.
    state = restore(ppo, job.resume_checkpoint) if job.resume_checkpoint else {"step": 0, "tokens_seen": 0}
    job.check_stop()

    # 7. The PPO loop: rollout, score, advantages, clipped updates, KL control, events.
    job.training = True
    trainable = sum(x.numel() for x in ppo.trainable())
    total = sum(x.numel() for x in ppo.policy.parameters()) + sum(x.numel() for x in ppo.head.parameters())
    job.emit(ev.TrainBegin(total_steps=p.max_steps, trainable_params=trainable, total_params=total,
                           train_records=len(rows), eval_records=0, device=runtime.device))
    job.status("Training")
    step, tokens_seen = state["step"], state["tokens_seen"]
    job.last_step = step
    while step < p.max_steps:
        started = time.time()
        batch = batch_indices(step, p.batch_size, len(rows), runtime.seed)
        rollout, judgement, sample_stats = make_rollout(ppo, tokenizer, [prompt_ids[i] for i in batch],
                                                        [rows[i] for i in batch], rewards, stop_ids, p)
        kl_coef = ppo.kl.value
        rollout_stats = add_advantages(rollout, kl_coef, p)
        ppo.kl.update(rollout_stats["kl"], n_steps=len(batch))
        update_stats = update(ppo, rollout, p)
        step += 1
        job.last_step = step
        tokens = int(rollout.attention_mask[:, :rollout.prompt_len].sum() + rollout.mask.sum())
        tokens_seen += tokens
        if due(step, p.sample_every):
            emit_samples(job, step, judgement, rollout, p.sample_count)
        if step % p.logging_steps == 0 or step == p.max_steps:
            stats = {**sample_stats, **rollout_stats, **update_stats, "kl_coef": kl_coef, **failure_counts(rewards)}
            log = ev.Log(step=step, total_steps=p.max_steps, epoch=step * p.batch_size / len(rows),
                         loss=stats.pop("loss"), lr=p.learning_rate, grad_norm=stats.pop("grad_norm"),
                         tokens_per_s=tokens / max(time.time() - started, 1e-9), tokens_seen=tokens_seen,
                         metrics=stats)
            job.emit(log)
            tracker.log(log)
        if step % p.save_steps == 0 or job.stop_requested:
            save_checkpoint(ppo, tokenizer, job, step, tokens_seen, p.max_steps)
        if job.stop_requested:
            tracker.close()
            return None
    tracker.close()

    # 8. Save what export and later runs read: the adapter alone for LoRA, else the whole model.
    out = layout.output_for(job.run_dir, adapter=p.mode == "lora")
    job.status(f"Saving {out.name}")
    ppo.policy.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


# -- prompts ------------------------------------------------------------------------------------

def encode_prompts(rows: list[dict], tokenizer, max_length: int) -> list[list[int]]:
    """Token ids of each prompt (a conversation ends with the assistant's generation prompt),
    keeping the last `max_length` tokens."""
    out = []
    for row in rows:
        prompt = row["prompt"]
        if isinstance(prompt, list):
            if not tokenizer.chat_template:
                raise DataError("The prompts are conversations but the model's tokenizer has no chat template: "
                                "import them as text prompts, or use a model with a chat template.")
            ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"]
        else:
            ids = tokenizer(prompt)["input_ids"]
        if not ids:
            raise DataError("A prompt is empty after tokenization; every prompt needs some text.")
        out.append(list(ids)[-max_length:])
    return out


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> list[int]:
    """The rows of iteration `step`: passes over the prompts, each in its own seeded order, so a
    resumed run picks up exactly where it stopped."""
    out, orders = [], {}
    for k in range(step * batch_size, (step + 1) * batch_size):
        epoch = k // n
        if epoch not in orders:
            orders[epoch] = random.Random(seed * 1_000_003 + epoch).sample(range(n), n)
        out.append(orders[epoch][k % n])
    return out


# -- rewards ------------------------------------------------------------------------------------

def load_rewards(spec: JobSpec, p, tokenizer, first_row: dict) -> list:
    """The rule rewards of `rewards` and the reward model (`rewards.setup.method_rewards`), as
    callables with name and weight; the rule rewards tried on `first_row` before the model loads."""
    from workbench.rewards import RewardError
    from workbench.rewards.setup import method_rewards

    try:
        return method_rewards(spec.project, p, spec.runtime.device, dtype_name(spec.runtime), tokenizer=tokenizer,
                              batch_size=p.mini_batch_size, first_row=first_row)
    except RewardError as exc:
        raise ParamError(str(exc)) from None


def score(rewards: list, rows: list[dict], texts: list[str], completion_ids: list[list[int]]):
    """(total score per completion, {metric: mean}, the judgement): every reward called as TRL calls
    it (`rewards.scoring.judge`), with the rows' other fields (record_index among them) as columns;
    chat prompts get their completions as an assistant turn. A score of None counts 0."""
    from workbench.rewards.scoring import judge

    prompts = [r["prompt"] for r in rows]
    completions = [[{"role": "assistant", "content": t}] for t in texts] \
        if isinstance(prompts[0], list) else list(texts)
    names = sorted({k for r in rows for k in r} - set(RESERVED_COLUMNS))
    columns = {k: [r.get(k) for r in rows] for k in names}
    judgement = judge(rewards, prompts, completions, completion_ids=completion_ids, **columns)
    total = [t or 0.0 for t in judgement.totals()]
    scores = torch.tensor(total, dtype=torch.float32)
    stats = {"reward": scores.mean().item(), "reward_std": scores.std().item() if len(total) > 1 else 0.0}
    if len(judgement.raw) > 1:
        stats.update({f"reward/{name}": sum(x or 0.0 for x in v) / len(v) for name, v in judgement.raw.items()})
    return scores, stats, judgement


def emit_samples(job: JobContext, step: int, judgement, rollout: Rollout, count: int) -> None:
    """The first `count` completions of the iteration as sample events: each reward's weighted score,
    the total, and the advantage (the mean of the completion's whitened per-token advantages)."""
    advantages = core.masked_mean(rollout.advantages, rollout.mask, dim=1).tolist()
    for i in range(min(count, len(judgement))):
        job.emit(sample_event(step, judgement.prompts[i], judgement.completions[i], judgement.judged(i),
                              advantages[i]))


# -- models -------------------------------------------------------------------------------------

class ValueHead(torch.nn.Module):
    """V(s) = w . h + b on the policy's last hidden state, in float32. It starts at zero, so the
    first updates of the value do not push the shared trunk around."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, 1)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        with torch.autocast(hidden.device.type, enabled=False):  # in float32 under the policy's autocast too
            return self.linear(hidden.float()).squeeze(-1)


@dataclass
class PPOModels:
    policy: torch.nn.Module
    head: ValueHead
    reference: torch.nn.Module | None  # None: the policy with its adapter switched off
    kl: core.FixedKL | core.AdaptiveKL
    optimizer: torch.optim.Optimizer | None = None
    compute: torch.dtype = torch.float32  # bf16 over a full policy's fp32 master weights: autocast's dtype

    def trainable(self) -> list[torch.nn.Parameter]:
        return [x for x in self.policy.parameters() if x.requires_grad] + list(self.head.parameters())

    def autocast(self):
        """The policy's passes computed in `compute` (nothing changes where it is float32)."""
        device = next(self.head.parameters()).device.type
        return torch.autocast(device, dtype=self.compute, enabled=self.compute != torch.float32)


def load_models(p, folder: Path, spec: JobSpec, checkpoint: str | None) -> PPOModels:
    """The policy (from the checkpoint's weights when resuming), its value head, the reference
    and the optimiser; every model in eval mode (no dropout)."""
    device, dtype = spec.runtime.device, dtype_name(spec.runtime)
    if p.mode == "lora":
        from peft import PeftModel, get_peft_model

        base = models.load_causal_lm(folder, dtype=dtype, device=device)
        policy = PeftModel.from_pretrained(base, checkpoint, is_trainable=True) if checkpoint else \
            get_peft_model(base, peft_config(p))
        reference = None
    else:  # fp32 master weights under 16-bit autocast (a 16-bit weight rounds away small updates)
        policy = models.load_causal_lm(Path(checkpoint) if checkpoint else folder, dtype="float32", device=device)
        reference = models.load_causal_lm(folder, dtype=dtype, device=device).requires_grad_(False).eval()
    policy.eval()
    head = ValueHead(policy.config.get_text_config().hidden_size).to(device)
    ppo = PPOModels(policy, head, reference, core.kl_controller(p.kl_control, p.kl_coef, p.target_kl, p.kl_horizon),
                    compute=getattr(torch, dtype) if p.mode != "lora" else torch.float32)
    ppo.optimizer = torch.optim.AdamW(ppo.trainable(), lr=p.learning_rate)
    return ppo


def stop_token_ids(model, tokenizer) -> list[int]:
    """The tokens that end a completion: the tokenizer's end of sequence and the model's own."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return sorted(i for i in ids if i is not None)


def forward(model, input_ids, attention_mask, prompt_len: int, temperature: float, head: ValueHead | None = None):
    """(logits predicting each completion token, divided by the sampling temperature; values or None).

    Positions count from each row's first real token, as they did during generation."""
    position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
    completion_len = input_ids.shape[1] - prompt_len
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False,
                output_hidden_states=head is not None, logits_to_keep=completion_len + 1)
    logits = out.logits[:, :-1].float() / temperature
    values = head(out.hidden_states[-1][:, prompt_len - 1:-1]) if head is not None else None
    return logits, values


# -- rollout ------------------------------------------------------------------------------------

@dataclass
class Rollout:
    """One iteration's samples; per-token tensors are [batch, completion tokens]."""

    input_ids: torch.Tensor  # prompt (left-padded) + completion
    attention_mask: torch.Tensor
    prompt_len: int
    mask: torch.Tensor  # completion tokens up to and including the first stop token
    logprobs: torch.Tensor
    ref_logprobs: torch.Tensor
    values: torch.Tensor
    scores: torch.Tensor  # [batch]
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None


@torch.no_grad()
def make_rollout(ppo: PPOModels, tokenizer, prompt_ids: list[list[int]], rows: list[dict], rewards: list,
                 stop_ids: list[int], p):
    """(rollout, the rewards' judgement of the completions, stats of the samples): sample, score, and
    evaluate under the policy, the value head and the reference."""
    from transformers import GenerationConfig

    device = next(ppo.head.parameters()).device
    tokenizer.padding_side = "left"
    prompts = tokenizer.pad({"input_ids": prompt_ids}, return_tensors="pt").to(device)
    generation = GenerationConfig(do_sample=True, temperature=p.temperature, top_k=0, top_p=1.0,
                                  max_new_tokens=p.max_new_tokens, eos_token_id=stop_ids,
                                  pad_token_id=tokenizer.pad_token_id)
    with ppo.autocast():
        sequences = ppo.policy.generate(**prompts, generation_config=generation)
    prompt_len = prompts["input_ids"].shape[1]
    completion = sequences[:, prompt_len:]
    mask = core.completion_mask(completion, stop_ids)
    attention = torch.cat([prompts["attention_mask"], torch.ones_like(completion)], dim=1)

    kept = [ids[:n] for ids, n in zip(completion.tolist(), mask.sum(1).tolist())]
    texts = tokenizer.batch_decode(kept, skip_special_tokens=True)
    scores, sample_stats, judgement = score(rewards, rows, texts, kept)
    sample_stats["stopped"] = sum(bool(ids) and ids[-1] in stop_ids for ids in kept) / len(kept)

    logprobs, ref_logprobs, values = [], [], []
    for start in range(0, len(rows), p.mini_batch_size):
        part = slice(start, start + p.mini_batch_size)
        args = (sequences[part], attention[part], prompt_len, p.temperature)
        with ppo.autocast():
            logits, value = forward(ppo.policy, *args, head=ppo.head)
        logprobs.append(core.logprobs_from_logits(logits, completion[part]))
        values.append(value)
        if ppo.reference is None:
            with ppo.policy.disable_adapter():
                ref_logits, _ = forward(ppo.policy, *args)
        else:
            ref_logits, _ = forward(ppo.reference, *args)
        ref_logprobs.append(core.logprobs_from_logits(ref_logits, completion[part]))
    rollout = Rollout(sequences, attention, prompt_len, mask, torch.cat(logprobs), torch.cat(ref_logprobs),
                      torch.cat(values), scores.to(device))
    return rollout, judgement, sample_stats


def add_advantages(rollout: Rollout, kl_coef: float, p) -> dict[str, float]:
    """Per-token rewards, GAE advantages (whitened) and returns, set on the rollout; their stats."""
    mask = rollout.mask
    kl = core.kl_estimate(rollout.logprobs, rollout.ref_logprobs, p.kl_estimator) * mask
    scores = rollout.scores.clamp(-p.score_clip, p.score_clip) if p.score_clip > 0 else rollout.scores
    rewards = core.token_rewards(scores, kl, mask, kl_coef)
    if p.whiten_rewards:
        rewards = core.whiten(rewards, mask, shift_mean=False)
    advantages, returns = core.gae(rewards, rollout.values, mask, p.gamma, p.lam)
    rollout.advantages, rollout.returns = core.whiten(advantages, mask), returns
    lengths = mask.sum(1).float()
    return {
        "kl": kl.sum(1).mean().item(),
        "advantage_mean": core.masked_mean(advantages, mask).item(),
        "returns_mean": core.masked_mean(returns, mask).item(),
        "value_mean": core.masked_mean(rollout.values, mask).item(),
        "completion_length": lengths.mean().item(),
    }


# -- optimisation -------------------------------------------------------------------------------

def update(ppo: PPOModels, rollout: Rollout, p) -> dict[str, float]:
    """ppo_epochs passes over the rollout in shuffled minibatches: clipped policy loss, clipped
    value loss, optional entropy bonus, gradient clipping, one AdamW step each; their mean stats."""
    stats = defaultdict(list)
    n, prompt_len = rollout.input_ids.shape[0], rollout.prompt_len
    trainable = ppo.trainable()
    for _ in range(p.ppo_epochs):
        order = torch.randperm(n)
        for start in range(0, n, p.mini_batch_size):
            idx = order[start:start + p.mini_batch_size].to(rollout.input_ids.device)
            mask = rollout.mask[idx]
            with ppo.autocast():
                logits, values = forward(ppo.policy, rollout.input_ids[idx], rollout.attention_mask[idx], prompt_len,
                                         p.temperature, head=ppo.head)
            logprobs = core.logprobs_from_logits(logits, rollout.input_ids[idx, prompt_len:])
            pg_loss, clipfrac, approx_kl = core.policy_loss(logprobs, rollout.logprobs[idx], rollout.advantages[idx],
                                                            mask, p.cliprange)
            vf_loss, vf_clipfrac = core.value_loss(values, rollout.values[idx], rollout.returns[idx], mask,
                                                   p.cliprange_value)
            entropy = core.masked_mean(core.entropy_from_logits(logits if p.entropy_coef else logits.detach()), mask)
            loss = pg_loss + p.vf_coef * vf_loss - p.entropy_coef * entropy
            ppo.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, p.max_grad_norm or float("inf"))
            ppo.optimizer.step()
            for name, value in (("loss", loss), ("policy_loss", pg_loss), ("value_loss", vf_loss),
                                ("clipfrac", clipfrac), ("value_clipfrac", vf_clipfrac), ("entropy", entropy),
                                ("approx_kl", approx_kl), ("grad_norm", grad_norm)):
                stats[name].append(value.detach().item())
    return {name: sum(values) / len(values) for name, values in stats.items()}


# -- checkpoints --------------------------------------------------------------------------------

def save_checkpoint(ppo: PPOModels, tokenizer, job: JobContext, step: int, tokens_seen: int, max_steps: int):
    """checkpoints/checkpoint-N: the adapter (or model) as export reads it, the value head, the
    optimiser, the random state, and trainer_state.json last (it marks the checkpoint complete)."""
    folder = job.checkpoints_dir / layout.checkpoint_name(step)
    job.status(f"Saving checkpoint {step}")
    ppo.policy.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    torch.save(ppo.head.state_dict(), folder / "value_head.pt")
    torch.save(ppo.optimizer.state_dict(), folder / "optimizer.pt")
    rng = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, folder / "rng_state.pth")
    state = {"global_step": step, "max_steps": max_steps, "kl_coef": ppo.kl.value, "tokens_seen": tokens_seen}
    (folder / layout.CHECKPOINT_COMPLETE).write_text(json.dumps(state, indent=2))
    job.emit(ev.Checkpoint(step=step, path=str(folder)), sync=True)


def restore(ppo: PPOModels, checkpoint: str) -> dict:
    """Load the value head, optimiser, KL coefficient and random state of a checkpoint; its state.
    Tensors and plain data only (`weights_only`): a checkpoint cannot run code when it is loaded."""
    folder = Path(checkpoint)
    device = next(ppo.head.parameters()).device
    ppo.head.load_state_dict(torch.load(folder / "value_head.pt", map_location=device, weights_only=True))
    ppo.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location=device, weights_only=True))
    rng = torch.load(folder / "rng_state.pth", weights_only=True)  # Python's state is a tuple of ints
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state = json.loads((folder / layout.CHECKPOINT_COMPLETE).read_text())
    ppo.kl.value = state["kl_coef"]
    return {"step": state["global_step"], "tokens_seen": state.get("tokens_seen", 0)}
