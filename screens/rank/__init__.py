"""Ranking sampled answers: pick or resume a session, rank its groups, let a judge model rank them.

`sessions` is the modal that starts or resumes a sampling session, `screen` ranks its
groups with the keyboard (`text` holds what it says, `state` the rules of one ranking,
`feed` what its threads read), and `judge` starts a judge model on a session.
"""
