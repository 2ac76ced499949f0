"""The ranks of a multi-process run stop at the same step.

A stop reaches each rank when it reaches it: one rank may be past a step's end when another is
still in it. Were each to stop on its own, one would leave the training loop while the others
wait for it in the next gradient all-reduce. So at each step's end the ranks share their stop
flags (one all-reduce of one number, the largest wins): when any rank was asked to stop, every
rank saves the same checkpoint and stops. On one process the callback does nothing.
"""

from __future__ import annotations

from transformers import TrainerCallback


class StopSync(TrainerCallback):
    def __init__(self, job):
        self.job = job

    def on_step_end(self, args, state, control, **kwargs):
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return control
        flag = torch.tensor([1 if self.job.stop_requested else 0], device=args.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() and not self.job.stop_requested:
            self.job.stop_requested = True  # a flag only: training is under way, nothing is interrupted
        if self.job.stop_requested:
            control.should_save = True
            control.should_training_stop = True
        return control
