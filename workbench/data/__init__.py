"""Datasets: read files, detect and normalise record kinds, report problems by line."""
