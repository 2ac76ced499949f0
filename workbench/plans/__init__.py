"""Plans of several runs: pipelines (stages chained on each other), sweeps, and the runner that starts them."""
