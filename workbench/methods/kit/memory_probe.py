"""The memory probe: one forward and backward pass on the longest batch, before training.

Why: an out-of-memory error otherwise surfaces whenever the data loader happens to
draw the longest records, possibly hours into a run. The batch of the `batch_size`
longest records at their truncated length is the largest activation footprint the
run will meet (the optimiser state is allocated at the first step and is covered by
the preflight estimate), so running it first makes an out-of-memory appear within the
first minute. The gradients are then zeroed and the random state restored, so the
run trains exactly as it would have without the probe.
"""

from __future__ import annotations

from workbench.run.context import JobContext


def probe(trainer, batch_size: int, job: JobContext) -> int:
    """Run the probe on `trainer`'s prepared training set; returns the tokens of the batch."""
    import torch

    dataset = trainer.train_dataset
    if dataset is None or len(dataset) == 0:
        return 0
    lengths = [len(ids) for ids in dataset["input_ids"]]
    longest = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)[:batch_size]
    tokens = sum(lengths[i] for i in longest)
    job.status(f"checking memory on the longest batch ({tokens} tokens)")
    batch = trainer.data_collator([dataset[i] for i in longest])
    model = trainer.model
    device = next(model.parameters()).device
    batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
    cpu_rng = torch.random.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    was_training = model.training
    model.train()
    try:
        outputs = model(**batch)
        outputs.loss.backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        torch.random.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        del batch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return tokens
