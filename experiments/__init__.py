"""Runnable experiments, benchmarks and the `ordergrad-jax` command (see DESIGN.md)."""
