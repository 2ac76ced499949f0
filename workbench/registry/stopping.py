"""What a stop does to a run of each method, in the words a person reads when asking for one.

A training run saves a checkpoint before it exits (and can be resumed from it); a run that writes
data keeps what it wrote so far: a sampler its groups, a judge its rankings, a teacher its records.
"""

from __future__ import annotations

from workbench import registry

KEEPS = {
    "sample": "it keeps the groups it sampled, then exits",
    "judge": "it keeps the rankings it committed, then exits",
    "synth": "it keeps the records written so far as the dataset, then exits",
}
TRAINING = "it saves a checkpoint, then exits"
WRITING = "it keeps what it wrote so far, then exits"


def on_stop(method: str) -> str:
    """`it saves a checkpoint, then exits` for a training method; what a data-writing one keeps instead."""
    if method in KEEPS:
        return KEEPS[method]
    found = registry.METHODS.get(method)
    return WRITING if found is not None and found.kind != "train" else TRAINING
