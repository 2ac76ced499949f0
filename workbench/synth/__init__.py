"""Synthetic data from a teacher: the generation job, its parameters and its filters."""
