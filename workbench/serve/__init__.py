"""The playground's model server: one model, kept warm in a detached process, spoken to over a socket."""
