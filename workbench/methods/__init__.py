"""Training recipes and their parameters, one module a method; shared trainer pieces in `kit`."""
