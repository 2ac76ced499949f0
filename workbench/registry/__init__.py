"""The method registry: what each method is called, the data it needs and its parameters.

This module and the params modules are light (no torch): the UI reads them to build
forms. Each method's `run(spec, job)` lives in a module imported only by the worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.methods.classifier_params import ClassifierParams
from workbench.methods.distill_params import DistillParams, GKDParams
from workbench.methods.embed_params import EmbedParams
from workbench.methods.grpo_params import GRPOParams, RLOOParams
from workbench.methods.kto_params import KTOParams
from workbench.methods.orpo_params import ORPOParams
from workbench.methods.pair_params import DPOParams, RewardParams
from workbench.methods.ppo_params import PPOParams
from workbench.methods.sft_params import SFTParams
from workbench.ranking.judge_params import JudgeParams
from workbench.ranking.sample_params import PROMPT_KINDS, SampleParams
from workbench.synth.params import SynthParams


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    summary: str
    data_kinds: tuple[str, ...]
    params: type
    runner: str  # "module:function", written in the job's spec and imported by the worker only
    kind: str = "train"  # "train": teaches a model; "generate": writes data (samples, rankings, datasets)
    ranks: bool = True  # runs on several processes when asked (DDP or FSDP); False: one process, always

    @property
    def one_process(self) -> bool:
        """Runs in one process whatever the machine: a data-writing job, or a training loop of its own."""
        return self.kind != "train" or not self.ranks


METHODS: dict[str, Method] = {
    "sft": Method(
        name="sft",
        title="Supervised fine-tuning",
        summary="Learn to answer like the examples (chat, prompt/completion or plain text), with LoRA or on all weights.",
        data_kinds=("chat", "prompt_completion", "text"),
        params=SFTParams,
        runner="workbench.methods.sft:run",
    ),
    "reward": Method(
        name="reward",
        title="Reward model",
        summary="Learn a score that ranks chosen answers above rejected ones (preference or ranked data).",
        data_kinds=("preference", "ranked"),
        params=RewardParams,
        runner="workbench.methods.reward:run",
    ),
    "dpo": Method(
        name="dpo",
        title="Direct preference optimisation",
        summary="Prefer the chosen answers over the rejected ones, staying close to the base (preference or ranked data).",
        data_kinds=("preference", "ranked"),
        params=DPOParams,
        runner="workbench.methods.dpo:run",
    ),
    "kto": Method(
        name="kto",
        title="KTO from good and bad answers",
        summary="Learn from single answers marked good or bad (thumbs up or down, no pairs needed), staying "
                "close to the base (unpaired label data, or preference pairs split in two).",
        data_kinds=("unpaired_label", "preference"),
        params=KTOParams,
        runner="workbench.methods.kto:run",
    ),
    "orpo": Method(
        name="orpo",
        title="ORPO: preferences without a reference",
        summary="Learn the chosen answers and prefer them over the rejected ones in one stage from the base, "
                "with no reference model (preference or ranked data; TRL's experimental ORPOTrainer).",
        data_kinds=("preference", "ranked"),
        params=ORPOParams,
        runner="workbench.methods.orpo:run",
    ),
    "grpo": Method(
        name="grpo",
        title="GRPO with rewards",
        summary="Sample several answers per prompt and favour those whose rewards (rules, your reward file, "
                "a reward model) beat their group's mean (prompt, prompt/completion or chat data).",
        data_kinds=("prompt", "prompt_completion", "chat"),
        params=GRPOParams,
        runner="workbench.methods.grpo:run",
    ),
    "rloo": Method(
        name="rloo",
        title="RLOO with a reward model",
        summary="Critic-free RLHF: sample several answers per prompt, score them with a reward model, and favour "
                "each by how much it beats the others of its prompt, staying close to the base.",
        data_kinds=("prompt", "prompt_completion", "chat"),
        params=RLOOParams,
        runner="workbench.methods.rloo:run",
    ),
    "ppo": Method(
        name="ppo",
        title="PPO from rewards",
        summary="Sample answers to prompts, score them with a reward model and/or rule rewards, and learn "
                "to score higher while staying close to the base (KL penalty, clipped updates, value head).",
        data_kinds=("prompt", "prompt_completion", "chat"),
        params=PPOParams,
        runner="workbench.methods.ppo:run",
        ranks=False,  # its own loop (policy, value head, rollouts) is not distributed
    ),
    "classifier": Method(
        name="classifier",
        title="Classification head",
        summary="Learn to sort texts into their labelled classes (or answers into good and bad) with a new "
                "output head; by default the base stays frozen and only the head trains.",
        data_kinds=("labelled", "unpaired_label"),
        params=ClassifierParams,
        runner="workbench.methods.classifier:run",
    ),
    "embed": Method(
        name="embed",
        title="Embedding model",
        summary="Fine-tune a sentence embedding model (sentence-transformers; a causal base gets mean pooling) so "
                "matching texts sit close: pairs or triplets, or pairs scored by similarity; recall@k and MRR "
                "on the held-out pairs before and after.",
        data_kinds=("pair", "scored_pair"),
        params=EmbedParams,
        runner="workbench.methods.embed:run",
    ),
    "distill": Method(
        name="distill",
        title="Distillation from a teacher",
        summary="Learn a teacher's whole next-token distribution on the dataset's answers (KL at a temperature, "
                "mixed with cross-entropy); the teacher must share the tokenizer.",
        data_kinds=("chat", "prompt_completion", "text"),
        params=DistillParams,
        runner="workbench.methods.distill:run",
    ),
    "gkd": Method(
        name="gkd",
        title="On-policy distillation (GKD)",
        summary="Answer the prompts yourself and learn the teacher's distribution on those answers "
                "(generalized JSD); the teacher must share the tokenizer.",
        data_kinds=("chat",),
        params=GKDParams,
        runner="workbench.methods.gkd:run",
    ),
    "synth": Method(
        name="synth",
        title="Synthetic data from a teacher",
        summary="A teacher writes a new chat dataset: answers to prompts, questions for answers, or reasoning "
                "traces checked against known answers; filtered and deduplicated.",
        data_kinds=("prompt", "prompt_completion", "chat", "text"),
        params=SynthParams,
        runner="workbench.synth.generate:run",
        kind="generate",
    ),
    "sample": Method(
        name="sample",
        title="Sample candidates to rank",
        summary="Sample several answers per prompt (or one from each of two models, blind) for the ranking screen.",
        data_kinds=PROMPT_KINDS,
        params=SampleParams,
        runner="workbench.ranking.sample:run",
        kind="generate",
    ),
    "judge": Method(
        name="judge",
        title="Rank with a judge model",
        summary="A judge model grades each candidate of a sampling session and commits the rankings.",
        data_kinds=PROMPT_KINDS,
        params=JudgeParams,
        runner="workbench.ranking.judge:run",
        kind="generate",
    ),
}


def trains(name: str) -> bool:
    """Whether a job of method `name` trains a model (not an evaluation, a sampling session, an export...)."""
    method = METHODS.get(name)
    return method is not None and method.kind == "train"


JOBS_NOT_TRAINING = {"eval": "an evaluation job", "sample": "a sampling session", "judge": "a judging job",
                     "synth": "a synthetic-data job", "export": "an export job"}


def not_trained(run_id: str, method: str, use: str) -> str:
    """The one-line refusal of a job that trains no model where `use` needs one ("export", "evaluate")."""
    what = JOBS_NOT_TRAINING.get(method, f"a {method} job")
    return f"{run_id} is {what}: it trains no model to {use}. Name a training run (`workbench runs` lists them)."


def of_kind(kind: str) -> list[Method]:
    return [m for m in METHODS.values() if m.kind == kind]


class UnknownMethod(ValueError):
    pass


def get(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownMethod(f"Unknown method '{name}'. Available: {', '.join(METHODS)}.") from None
