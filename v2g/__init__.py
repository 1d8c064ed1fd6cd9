"""The `v2g` command line: one composition root for every runnable."""
