"""Parameters of distillation from a teacher: offline on a dataset's answers, and on-policy (GKD)."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.methods.sft_params import SFTParams
from workbench.params import ParamError, param

TEACHER_HELP = "The model to learn from: run:<id>, run:<id>/checkpoint-N or a model folder (same tokenizer)."


def teacher():
    return param("", TEACHER_HELP, group="method")


def require_teacher(value: str) -> None:
    """A teacher has no sensible default: distilling the base into itself teaches nothing."""
    if not value.strip():
        raise ParamError("teacher: distillation needs a teacher model; set teacher=run:<id>, "
                         "run:<id>/checkpoint-N or a model folder.")


@dataclass
class DistillParams(SFTParams):
    """SFT's fields (same data, tokens and mask), plus how the teacher's distribution is followed."""

    teacher: str = teacher()
    temperature: float = param(2.0, "Softens both distributions before they are compared (T); the KL term is "
                                    "scaled by T^2 so its gradients keep their size.", min=0.05, max=20,
                               group="method")
    alpha: float = param(0.5, "Weight of the teacher term; 1 - alpha weighs the cross-entropy on the answers.",
                         min=0, max=1, group="method")
    kl: str = param("forward", "forward: KL(teacher || student), covers every mode of the teacher; reverse: "
                               "KL(student || teacher), picks one; jsd: generalized Jensen-Shannon (jsd_beta).",
                    choices=("forward", "reverse", "jsd"), group="method")
    jsd_beta: float = param(0.5, "Mixture weight of the teacher in the jsd divergence (0 < beta < 1).",
                            min=0.01, max=0.99, group="method")
    teacher_cache: str = param("none", "none: the teacher runs beside the student at every step; topk: its "
                                       "top_k log-probs per answer token are computed once and stored in the run.",
                               choices=("none", "topk"), group="method")
    top_k: int = param(32, "Tokens of the teacher's distribution kept per position with teacher_cache=topk "
                           "(renormalised; the rest of its mass is dropped).", min=1, max=4096, group="method")

    def __post_init__(self):
        require_teacher(self.teacher)
        if self.teacher_cache == "topk" and self.kl != "forward":
            raise ParamError(f"kl: {self.kl} needs the teacher's whole distribution; with teacher_cache=topk "
                             "only kl=forward is defined (use teacher_cache=none).")


@dataclass
class GKDParams(SFTParams):
    """On-policy distillation: part of the answers are the student's own samples, scored by the teacher."""

    teacher: str = teacher()
    lmbda: float = param(0.5, "Share of steps that train on the student's own generations (on-policy).",
                         min=0, max=1, group="method")
    beta: float = param(0.5, "Generalized JSD between teacher and student: 0 is forward KL, 1 reverse KL.",
                        min=0, max=1, group="method")
    temperature: float = param(0.9, "Sampling temperature of the generated answers.", min=0.05, max=5,
                               group="method")
    max_new_tokens: int = param(128, "Tokens generated per answer on on-policy steps.", min=1, max=8192,
                                group="method")
    seq_kd: bool = param(False, "On the other steps, train on the teacher's generated answers (sequence-level "
                                "KD) instead of the dataset's.", group="method")

    def __post_init__(self):
        require_teacher(self.teacher)
