"""Tools for tests and benchmarks: a synthetic speech corpus, WER, and real worker processes."""
