"""The campaign loop and what sits beside it: config, strategies, operators, search, store writer, crash safety, scale-out."""
