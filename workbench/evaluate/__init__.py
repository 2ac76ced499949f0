"""Held-out evaluation of a base model or a run on a project's data."""
