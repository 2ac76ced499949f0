"""`Reward`: one reward function with its name, weight and options, callable as TRL calls it."""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

from workbench.rewards.library import RewardError


class Reward:
    """A weighted reward with TRL's signature: `reward(prompts, completions, **columns)`.

    TRL names the logged metric `rewards/<name>/mean` after `__name__`. A failure inside the
    function is isolated record by record: the records that raise score None (TRL counts them 0
    in the total) and the others keep their scores. `judge` also says which records failed and
    why. The first failure is reported once through `warn` (the error, the record, how many of
    its batch failed); later ones are only counted in `failures`, whose `summary` says it all."""

    def __init__(self, name: str, weight: float, func: Callable[..., Any], options: dict[str, Any],
                 warn: Callable[[str], None], user_defined: bool = False, tokenizer: Any = None):
        self.name = self.__name__ = name
        self.weight = weight
        self.func = func
        self.user_defined = user_defined
        self.warn = warn
        self.failures = Failures(name)
        accepted = _keyword_names(func)
        extra = {**options, "tokenizer": tokenizer}
        self.options = {k: v for k, v in extra.items() if k in accepted}

    def __repr__(self) -> str:
        return f"Reward({self.name!r}, weight={self.weight:g})"

    def __call__(self, prompts: list, completions: list, **columns: Any) -> list[float | None]:
        return self.judge(prompts, completions, **columns)[0]

    def judge(self, prompts: list, completions: list, **columns: Any) -> tuple[list[float | None], dict[int, str]]:
        """(one score or None per completion, {index of a completion it raised on: "Type: message"})."""
        kwargs = {**columns, **self.options}
        try:
            scores, errors = self.func(prompts=prompts, completions=completions, **kwargs), {}
        except RewardError:
            raise
        except Exception as exc:  # noqa: BLE001 - a reward's own bug must not end the run
            scores, errors = self._record_by_record(prompts, completions, kwargs, exc)
        self.failures.judged += len(completions)
        return self._checked(scores, len(completions)), errors

    def _record_by_record(self, prompts: list, completions: list, kwargs: dict[str, Any],
                          batch_error: Exception) -> tuple[list[float | None], dict[int, str]]:
        """Score each record alone, so one bad record costs only its own score."""
        n = len(completions)
        scores: list[float | None] = []
        failed: dict[int, Exception] = {}
        for i in range(n):
            one = {k: (v[i:i + 1] if isinstance(v, list) and len(v) == n else v) for k, v in kwargs.items()}
            try:
                scores.extend(self._checked(self.func(prompts=prompts[i:i + 1], completions=completions[i:i + 1],
                                                      **one), 1))
            except RewardError:
                raise
            except Exception as exc:  # noqa: BLE001
                scores.append(None)
                failed[i] = exc
        index = kwargs.get("record_index")
        numbered = isinstance(index, list) and len(index) == n
        shown = failed or {0: batch_error}  # the whole batch failed though no record did alone: say that
        first = min(shown)
        where = f"record {index[first]}" if numbered else f"completion {first + 1} of {n}"
        if self.failures.add(_message(shown[first]), where, len(failed), n):
            self.warn(self.failures.first_report(len(failed), n))
        return scores, {i: _message(exc) for i, exc in failed.items()}

    def _checked(self, scores: Any, n: int) -> list[float | None]:
        if not isinstance(scores, (list, tuple)) or len(scores) != n:
            got = f"{len(scores)} scores" if isinstance(scores, (list, tuple)) else type(scores).__name__
            raise RewardError(f"Reward '{self.name}' returned {got} for {n} completions; "
                              "it must return one number (or None) per completion.")
        out: list[float | None] = []
        for s in scores:
            if s is None:
                out.append(None)
                continue
            try:
                value = float(s)
            except (TypeError, ValueError):
                raise RewardError(f"Reward '{self.name}' returned {s!r}; scores must be numbers or None.") from None
            out.append(None if math.isnan(value) else value)
        return out


def _keyword_names(func: Callable[..., Any]) -> set[str]:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _message(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


class Failures:
    """How often one reward raised: the first error and where, and the completions it failed on of all
    it judged."""

    def __init__(self, name: str):
        self.name = name
        self.first: str | None = None  # "ValueError: ... on record 8"
        self.failed = 0
        self.judged = 0

    def add(self, error: str, where: str, failed: int, n: int) -> bool:
        """Count a batch of `n` in which the reward raised on `failed`; True for its first such batch."""
        is_first = self.first is None
        if is_first:
            self.first = f"{error} on {where}"
        self.failed += failed
        return is_first

    def first_report(self, failed: int, n: int) -> str:
        if not failed:
            return (f"reward '{self.name}' raised {self.first} when given {n} completions together, though none "
                    "fails alone; they were scored one by one.")
        return (f"reward '{self.name}' raised {self.first} ({failed} of {n} completions of the batch); "
                "those score 0, and later failures are counted, not shown.")

    def summary(self) -> str | None:
        """One line for a person: the first error and record, and the count; None when it never raised."""
        if self.first is None:
            return None
        if not self.failed:
            return self.first_report(0, self.judged)
        return (f"reward '{self.name}' raised {self.first}; it failed on {self.failed} of {self.judged} "
                "completions, which score 0.")
