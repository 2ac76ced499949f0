"""A transformers TrainerCallback that turns trainer activity into workbench events."""

from __future__ import annotations

import time

from transformers import TrainerCallback

from workbench.run import events as ev
from workbench.run import layout

_KNOWN_LOG_KEYS = {"loss", "learning_rate", "grad_norm", "epoch", "num_input_tokens_seen", "total_flos"}


def _number(value):
    """A plain float; NaN and inf are kept, since a diverging run must show it."""
    return None if value is None else float(value)


class EventCallback(TrainerCallback):
    def __init__(self, job):
        self.job = job
        self._last_time = None
        self._last_tokens = 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.job.training = True
        trainable = total = 0
        if model is not None:
            for p in model.parameters():
                total += p.numel()
                if p.requires_grad:
                    trainable += p.numel()
        self._last_time = time.time()
        self._last_tokens = state.num_input_tokens_seen or 0
        self.job.emit(ev.TrainBegin(
            total_steps=state.max_steps, trainable_params=trainable, total_params=total,
            train_records=self.job.data_counts[0], eval_records=self.job.data_counts[1],
            device=str(args.device),
        ))

    def on_step_end(self, args, state, control, **kwargs):
        self.job.last_step = state.global_step
        if self.job.stop_requested:
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        step = state.global_step
        if "eval_loss" in logs:
            metrics = {k[5:]: float(v) for k, v in logs.items()
                       if k.startswith("eval_") and k != "eval_loss" and isinstance(v, (int, float))}
            self.job.last_eval_step = step
            self.job.emit(ev.Eval(step=step, loss=_number(logs["eval_loss"]), metrics=metrics))
            return
        if "loss" not in logs:
            return
        now = time.time()
        tokens = state.num_input_tokens_seen or 0
        elapsed = now - (self._last_time or now)
        rate = (tokens - self._last_tokens) / elapsed if elapsed > 0 and tokens else None
        self._last_time, self._last_tokens = now, tokens
        extra = {k: float(v) for k, v in logs.items()
                 if k not in _KNOWN_LOG_KEYS and isinstance(v, (int, float)) and not k.startswith("train_")}
        self.job.emit(ev.Log(
            step=step, total_steps=state.max_steps, epoch=float(state.epoch or 0),
            loss=_number(logs.get("loss")), lr=_number(logs.get("learning_rate")),
            grad_norm=_number(logs.get("grad_norm")), tokens_per_s=rate, tokens_seen=tokens or None,
            metrics=extra,
        ))

    def on_save(self, args, state, control, **kwargs):
        path = f"{args.output_dir}/{layout.checkpoint_name(state.global_step)}"
        self.job.emit(ev.Checkpoint(step=state.global_step, path=path), sync=True)
