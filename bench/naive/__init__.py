"""Naive twins: small apps written the way the seed documents or a typical tutorial write them.
Benchmarks only; never imported by `app/`."""
