"""Exporting a run: `screen` is the form that starts an export job and follows its events (reattaching
to one already running), `gguf` its GGUF part (quant types, and the files written and verified).
"""
