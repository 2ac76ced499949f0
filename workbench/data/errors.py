"""Why training data cannot be used as it is."""

from __future__ import annotations


class DataError(ValueError):
    """The training data cannot be used as it is (empty after splitting, wrong kind...)."""
