"""Ranking: sampling sessions of candidates, the append-only rankings, the judge and the reward-model scorer."""
