"""Plans of several runs: a pipeline's stages (`pipeline`) and a sweep's grid of runs (`sweep`)."""
