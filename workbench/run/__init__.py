"""The run-folder contract, light: layout, spec, events, context, model references, liveness."""
