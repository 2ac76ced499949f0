"""`Reward`: one reward function with its name, weight and options, callable as TRL calls it."""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

from workbench.rewards.library import RewardError


class Reward:
    """A weighted reward with TRL's signature: `reward(prompts, completions, **columns)`.

    TRL names the logged metric `rewards/<name>/mean` after `__name__`. A failure inside the
    function is isolated record by record: the records that raise score None and one warning
    names the reward, the first failing record and the error; the others keep their scores."""

    def __init__(self, name: str, weight: float, func: Callable[..., Any], options: dict[str, Any],
                 warn: Callable[[str], None], user_defined: bool = False, tokenizer: Any = None):
        self.name = self.__name__ = name
        self.weight = weight
        self.func = func
        self.user_defined = user_defined
        self.warn = warn
        accepted = _keyword_names(func)
        extra = {**options, "tokenizer": tokenizer}
        self.options = {k: v for k, v in extra.items() if k in accepted}

    def __repr__(self) -> str:
        return f"Reward({self.name!r}, weight={self.weight:g})"

    def __call__(self, prompts: list, completions: list, **columns: Any) -> list[float | None]:
        kwargs = {**columns, **self.options}
        try:
            scores = self.func(prompts=prompts, completions=completions, **kwargs)
        except RewardError:
            raise
        except Exception as exc:  # noqa: BLE001 - a reward's own bug must not end the run
            scores = self._record_by_record(prompts, completions, kwargs, exc)
        return self._checked(scores, len(completions))

    def _record_by_record(self, prompts: list, completions: list, kwargs: dict[str, Any],
                          batch_error: Exception) -> list[float | None]:
        """Score each record alone, so one bad record costs only its own score."""
        n = len(completions)
        scores: list[float | None] = []
        failed: list[tuple[int, Exception]] = []
        for i in range(n):
            one = {k: (v[i:i + 1] if isinstance(v, list) and len(v) == n else v) for k, v in kwargs.items()}
            try:
                scores.extend(self._checked(self.func(prompts=prompts[i:i + 1], completions=completions[i:i + 1],
                                                      **one), 1))
            except RewardError:
                raise
            except Exception as exc:  # noqa: BLE001
                scores.append(None)
                failed.append((i, exc))
        if not failed:  # the whole batch failed though no record did alone: report that
            failed = [(0, batch_error)]
        first, exc = failed[0]
        index = kwargs.get("record_index")
        numbered = isinstance(index, list) and len(index) == n
        where = f"record {index[first]}" if numbered else f"completion {first + 1} of {n}"
        more = f" (and {len(failed) - 1} more of {n})" if len(failed) > 1 else ""
        self.warn(f"reward '{self.name}' raised {type(exc).__name__}: {exc} on {where}{more}; scored 0 there.")
        return scores

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
