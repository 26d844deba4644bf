"""The control sweeps (declared by issue 23's work in progress)."""
