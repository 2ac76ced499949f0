"""Pieces shared by the training recipes: trainer arguments and modes, shared parameter groups, callbacks, teachers, pairs."""
