"""Benchmarks of acp_bridge; ``python -m bench`` runs them all and rewrites ``bench/RESULTS.md``."""
