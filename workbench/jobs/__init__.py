"""Jobs: a child process that trains (or samples, or exports) and reports through files."""
