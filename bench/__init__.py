"""Benchmarks: scripts that print figures (run them, don't collect them as tests). See bench/README.md."""
