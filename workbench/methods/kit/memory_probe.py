"""The memory probe: the longest batch through the trainer's own loss, forward and backward, before
training, unless the estimate says it fits with room to spare.

Why: an out-of-memory error otherwise surfaces whenever the data loader happens to draw the
longest records, possibly hours into a run. The batch of the `batch_size` longest records at
their truncated length is the largest activation footprint the run will meet (the optimiser
state is allocated at the first step and is covered by the preflight estimate), so running it
first makes an out-of-memory appear within the first minute.

What it costs: one training step at most. It runs `trainer.compute_loss`, the path each step takes
(TRL's SFT computes the loss from a fused, chunked LM head and never holds the whole logits), not
the model's plain forward, which builds the full batch x length x vocabulary logits and took longer
and more memory than any step. And when the rough estimate of `workbench.data.memory` needs at most
`SKIP_BELOW` of the free memory, the probe is skipped with a status saying so. The margin is wide
because the estimate is rough: on the demo (SmolLM2-135M, CPU) it says 1.7 GiB where the worker's
RSS peaks at 3.4 GiB (the interpreter, the libraries, the allocator's cache), so a run skipped by
the rule needs at most about two thirds of what is free. On several processes the ranks decide
together (on the least free memory), so that all of them probe or none does.

The gradients are then zeroed, the random state and the trainer's metrics restored, so the run
trains exactly as it would have without the probe.
"""

from __future__ import annotations

from workbench.data.memory import GIB, ModelShape, estimate_bytes, free_bytes
from workbench.run.context import JobContext

SKIP_BELOW = 0.33  # the estimate's share of free memory under which the probe is skipped


def longest_batch(dataset, batch_size: int) -> tuple[list[int], int]:
    """(indices of the `batch_size` longest rows, their tokens)."""
    lengths = [len(ids) for ids in dataset["input_ids"]]
    longest = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)[:batch_size]
    return longest, sum(lengths[i] for i in longest)


def estimate(model, batch_size: int, tokens_per_row: int) -> int:
    """The rough need of a step on this batch (`workbench.data.memory.estimate_bytes`) for the model as built."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    params = trainable = 0
    for p in model.parameters():
        params += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    first = next(model.parameters())
    shape = ModelShape(params=params, hidden=int(getattr(config, "hidden_size", 0) or 0),
                       layers=int(getattr(config, "num_hidden_layers", 0) or 0),
                       vocab=int(getattr(config, "vocab_size", 0) or 0))
    return estimate_bytes(shape, batch_size, tokens_per_row, trainable > params // 2, first.element_size())


def least_free(free: int, device) -> int:
    """The least free memory over the ranks of a multi-process run (this rank's alone otherwise)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return free
    value = torch.tensor([free], dtype=torch.int64, device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return int(value.item())


def probe(trainer, batch_size: int, job: JobContext) -> int:
    """Run the probe on `trainer`'s prepared training set; returns the tokens of the batch (0: not run)."""
    import torch

    dataset = trainer.train_dataset
    if dataset is None or len(dataset) == 0:
        return 0
    longest, tokens = longest_batch(dataset, batch_size)
    model = trainer.model
    device = next(model.parameters()).device
    need = estimate(model, len(longest), max(1, tokens // max(1, len(longest))))
    free, where = free_bytes("cuda" if device.type == "cuda" else "cpu")
    free = least_free(free, device)
    if need <= SKIP_BELOW * free:
        job.status(f"no memory probe: the longest batch ({tokens} tokens) needs about {need / GIB:.1f} GiB "
                   f"of {free / GIB:.1f} GiB {where}")
        return 0
    job.status(f"checking memory on the longest batch ({tokens} tokens): about {need / GIB:.1f} GiB of "
               f"{free / GIB:.1f} GiB {where}")
    batch = trainer.data_collator([dataset[i] for i in longest])
    batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
    cpu_rng = torch.random.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    metrics = {mode: {k: list(v) for k, v in found.items()}
               for mode, found in getattr(trainer, "_metrics", {}).items()}
    seen = getattr(trainer, "_total_train_tokens", None)
    was_training = model.training
    model.train()
    try:
        loss = trainer.compute_loss(model, batch)
        loss.backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        torch.random.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        if metrics:
            for mode, found in metrics.items():
                trainer._metrics[mode].clear()
                trainer._metrics[mode].update(found)
        if seen is not None:
            trainer._total_train_tokens = seen
        del batch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return tokens
