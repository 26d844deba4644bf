"""The brax sweeps (declared by issue 23's work in progress)."""
