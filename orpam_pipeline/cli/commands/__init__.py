"""One module per group of ``orpam`` commands."""
