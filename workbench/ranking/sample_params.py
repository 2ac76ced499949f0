"""Parameters of a sampling session: candidates to rank, from one model or blind from two."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.params import param
from workbench.ranking.order import ORDER_HELP, ORDERS

# What `0 = auto` picks, by device: (max_new_tokens, prompt_batch).
AUTO = {"cuda": (256, 8), "cpu": (64, 1)}

# Every kind that holds a prompt (a chat's prompt is the conversation before its last answer).
PROMPT_KINDS = ("chat", "prompt_completion", "preference", "ranked", "unpaired_label", "prompt")


@dataclass
class SampleParams:
    model: str = param("base", "The model that answers: base, run:<id>, run:<id>/checkpoint-N or a path.",
                       group="method")
    model_b: str = param("", "A second model for blind A/B: each prompt gets one answer from each, "
                             "in random order. Empty: n answers from `model`.", group="method")
    n: int = param(4, "Candidates per prompt (A/B gives exactly 2).", min=2, max=8, group="method")
    temperature: float = param(1.0, "Sampling temperature: high, so that the candidates differ.",
                               min=0.01, max=5.0, group="sampling")
    top_p: float = param(0.95, "Nucleus sampling: keep the smallest set of tokens holding this probability.",
                         min=0.01, max=1.0, group="sampling")
    max_new_tokens: int = param(0, "Longest answer, in tokens; 0 = auto: 256 on a GPU, 64 on the CPU (a group "
                                   "ends with its longest answer, and on a CPU 256 tokens keep the first cards "
                                   "minutes away).", min=0, max=8192, group="sampling")
    prompt_batch: int = param(0, "Prompts sampled together in one batch; 0 = auto: 8 on a GPU (a batch costs "
                                 "about what one prompt does), 1 on the CPU (each group as soon as it exists).",
                              min=0, max=64, group="sampling")
    prompts: int = param(100, "How many prompts the session samples; 0 = all of the chosen datasets.",
                         min=0, group="session")
    ahead: int = param(8, "Groups the sampler keeps ready ahead of the ranking; it pauses beyond that.",
                       min=1, max=1000, group="session")
    order: str = param("session", ORDER_HELP, choices=ORDERS, group="session")
    reward_runs: str = param("", "The two reward runs a `disagree` order compares, as ID,ID; empty: the project's "
                                 "newest two (a new session records which).", group="session")
    shuffle: bool = param(False, "Take the prompts in a seeded random order instead of the datasets' order.",
                          group="session")
    seed: int = param(42, "Seed of the prompt order, the sampling and the A/B order.", min=0, max=2**32 - 1,
                      group="session")
    idle_minutes: float = param(30.0, "The session ends after this long with nothing ranked and no resample "
                                      "request (it frees the model's memory).",
                                min=0, max=1440, group="session")
