"""Checkpoints that are whole or absent, and a full disk seen before it breaks one.

A trainer's checkpoint is written under `checkpoints/.staging/` and renamed beside the others once
every file is in: a resume never meets a half checkpoint, and a failed save leaves nothing behind.
Before each save the free space is compared with what the save needs (the size of the last
checkpoint once there is one; before the first, the weights it will hold and the optimizer's two
moments), so that a full disk stops the run with its numbers instead of a library's error deep in a
write. The final save (adapter or model) is checked and cleaned the same way.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from workbench.methods.kit import sharding
from workbench.run import disk, layout
from workbench.run.context import JobContext


def estimate_bytes(model, with_optimizer: bool) -> int:
    """What saving `model` writes: its trainable weights for an adapter (peft) model, else all of its
    weights; with the optimizer, AdamW's two fp32 moments per trainable weight."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    adapter = hasattr(model, "peft_config")
    weights = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad or not adapter)
    return weights + (2 * 4 * trainable if with_optimizer else 0)


def check_space(folder: Path, needed: int, saving: str) -> None:
    """Raise DiskFull when the filesystem holding `folder` has less than `needed` bytes (with a margin)
    and the events' reserve to spare."""
    needed = int(needed * disk.MARGIN) + disk.RESERVE_BYTES
    free = disk.free_bytes(folder)
    if free < needed:
        raise disk.DiskFull(f"No space left on {disk.mount_point(folder)} while saving {saving}: "
                            f"{disk.mb(needed)} needed, {disk.mb(free)} free")


class SafeCheckpoints:
    """Mixed into a transformers Trainer (`safe`): staged, renamed, space-checked checkpoints."""

    job: JobContext | None = None
    _last_checkpoint_bytes: int | None = None

    def _save_checkpoint(self, model, trial):
        from transformers.trainer_utils import rotate_checkpoints

        step = self.state.global_step
        real = Path(self._get_output_dir(trial=trial))
        real.mkdir(parents=True, exist_ok=True)
        needed = self._last_checkpoint_bytes
        if needed is None:
            previous = layout.latest_checkpoint(real.parent) if real.name == layout.CHECKPOINTS else None
            needed = disk.size_of(previous) if previous is not None else estimate_bytes(
                self.model, with_optimizer=not self.args.save_only_model)
        check_space(real, needed, f"checkpoint {step}")
        # Every rank of a multi-process run writes into the staging folder (each its own RNG state); the
        # process that saves (rank 0) alone makes it, renames it and rotates, the ranks waiting for each other
        # between (no-ops in a single process).
        main = self.args.should_save
        staging = real / layout.STAGING
        if main:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
        self.accelerator.wait_for_everyone()
        self._get_output_dir = lambda trial=None: str(staging)  # the parent the trainer writes into
        try:
            super()._save_checkpoint(model, trial)
        except BaseException as exc:
            if main:
                shutil.rmtree(staging, ignore_errors=True)
            if disk.is_no_space(exc):
                raise disk.DiskFull(f"No space left on {disk.mount_point(real)} while saving checkpoint {step} "
                                    f"({disk.mb(needed)} needed)") from exc
            raise
        finally:
            del self._get_output_dir  # back to the class's method
        self.accelerator.wait_for_everyone()  # every rank's files are in
        name = layout.checkpoint_name(step)
        target = real / name
        if main:
            if target.exists():  # the same step saved again (a resumed run that stopped where it started)
                shutil.rmtree(target)
            os.replace(staging / name, target)
            _sync_dir(real)
            shutil.rmtree(staging, ignore_errors=True)
        best = self.state.best_model_checkpoint
        if best and Path(best).parent == staging:
            self.state.best_model_checkpoint = str(real / Path(best).name)
        if main:
            rotate_checkpoints(output_dir=str(real), save_total_limit=self.args.save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)
        self.accelerator.wait_for_everyone()  # the checkpoint is in place for every rank
        self._last_checkpoint_bytes = disk.size_of(target)


def safe(trainer_cls: type) -> type:
    """`trainer_cls` with SafeCheckpoints mixed in (the same class when it already has them)."""
    if issubclass(trainer_cls, SafeCheckpoints):
        return trainer_cls
    return type(trainer_cls.__name__, (SafeCheckpoints, trainer_cls), {"__module__": trainer_cls.__module__})


def save_final(trainer, tokenizer, out: Path) -> None:
    """Save what the run produced into `out`, checked for space first; a save the disk cut short is
    removed, so that a half adapter is never taken for the run's result."""
    check_space(out.parent, estimate_bytes(trainer.model, with_optimizer=False), f"the run's {out.name}")
    try:
        sharding.save_model(trainer, out)  # under FSDP the shards gathered on rank 0
        if trainer.args.should_save:  # the process that saves (rank 0 of several)
            tokenizer.save_pretrained(str(out))
    except BaseException as exc:
        if disk.is_no_space(exc):
            shutil.rmtree(out, ignore_errors=True)
            raise disk.DiskFull(f"No space left on {disk.mount_point(out.parent)} while saving the run's "
                                f"{out.name}") from exc
        raise


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
