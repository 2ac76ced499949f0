"""Checks on the data before training: refuse what cannot teach anything, warn about the rest.

The worker runs them before every training job (a refusal raises `DataError`, which
ends the run with an `error` event of kind bad_data); `workbench data` runs them on
demand. Each check takes plain inputs, so each can be tested on crafted data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.data.errors import DataError
from workbench.data.memory import GIB, ModelShape, estimate_bytes
from workbench.data.render import Rendered

TRUNCATION_WARNING = 0.05  # warn when more than this share of records is truncated
MEMORY_MARGIN = 0.9  # warn when the estimate is above this share of the free memory


@dataclass
class Preflight:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: "Preflight") -> "Preflight":
        self.errors += other.errors
        self.warnings += other.warnings
        return self

    def raise_errors(self) -> None:
        if self.errors:
            raise DataError(" ".join(self.errors))

    def to_dict(self) -> dict:
        return {"errors": list(self.errors), "warnings": list(self.warnings)}


def needs_chat_template(records: list[dict]) -> bool:
    return any("messages" in r or any(isinstance(v, list) and v and isinstance(v[0], dict) for v in r.values())
               for r in records)


def check_template(datasets: list[tuple[str, list[dict]]], tokenizer) -> Preflight:
    """Chat records are rendered with the tokenizer's chat template: refuse when it has none."""
    found = Preflight()
    if getattr(tokenizer, "chat_template", None):
        return found
    chat = [name for name, records in datasets if needs_chat_template(records)]
    if chat:
        found.errors.append(
            f"The base model's tokenizer has no chat template, and dataset(s) {', '.join(map(repr, chat))} "
            "hold chat records, which are rendered with it. Use an instruction-tuned base model (its "
            "tokenizer carries a template), or import the data as prompt/completion or plain text.")
    return found


def check_pairs(datasets: list[tuple[str, list[dict]]]) -> Preflight:
    """A preference pair whose chosen and rejected answers are the same teaches nothing."""
    found = Preflight()
    for name, records in datasets:
        same = [i + 1 for i, r in enumerate(records) if "chosen" in r and r.get("chosen") == r.get("rejected")]
        if same:
            lines = ", ".join(map(str, same[:10])) + (" ..." if len(same) > 10 else "")
            found.errors.append(f"Dataset '{name}': {len(same)} preference pair(s) have identical chosen and "
                                f"rejected answers (record(s) {lines}); remove them or fix one side.")
    return found


def check_rendered(rendered: list[Rendered], max_length: int) -> Preflight:
    """Loss after masking and truncation, the end-of-sequence token, truncation."""
    found = Preflight()
    if not rendered:
        return found
    with_loss = [r for r in rendered if r.loss_tokens > 0]
    if not with_loss:
        found.errors.append(f"No record carries loss after masking and truncation to max_length={max_length}: "
                            "every answer lies beyond the kept tokens. Raise max_length or shorten the prompts.")
        return found
    stopping = sum(1 for r in with_loss if r.trains_stop)
    if stopping * 2 < len(with_loss):
        cut = sum(1 for r in with_loss if r.had_stop and not r.trains_stop)
        reason = (f"max_length={max_length} cuts {cut} answer(s) before their end" if cut else
                  "the chat template or tokenizer leaves it out of the completion")
        found.errors.append(f"The end-of-sequence token would not be trained in {len(with_loss) - stopping} of "
                            f"{len(with_loss)} records ({reason}), so the model would not learn to stop. "
                            "Raise max_length or shorten the records.")
    truncated = sum(1 for r in rendered if r.truncated)
    if truncated > TRUNCATION_WARNING * len(rendered):
        cut = sum(1 for r in rendered if r.had_stop and not r.trains_stop)
        found.warnings.append(f"{truncated} of {len(rendered)} records ({100 * truncated / len(rendered):.0f}%) "
                              f"are longer than max_length={max_length} and get truncated"
                              + (f"; {cut} of them lose the end of their answer." if cut else "."))
    skipped = len(rendered) - len(with_loss)
    if skipped:
        found.warnings.append(f"{skipped} record(s) carry no loss after truncation and are skipped.")
    return found


def check_memory(shape: ModelShape, batch: int, longest: int, full: bool, free: int, where: str,
                 weight_width: int = 4) -> Preflight:
    """Warn when the longest batch likely does not fit in `free` bytes."""
    found = Preflight()
    need = estimate_bytes(shape, batch, longest, full, weight_width)
    if need > MEMORY_MARGIN * free:
        found.warnings.append(
            f"The longest batch ({batch} x {longest} tokens) may not fit in memory: roughly {need / GIB:.1f} GiB "
            f"needed, {free / GIB:.1f} GiB {where}. Lower batch_size or max_length, or use LoRA.")
    return found
