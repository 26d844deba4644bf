"""The runs behind reports/transform/RESULTS.md's CPU tables: ``ordergrad-jax bench transform``
three times, one after the other (a stage each: timings are made alone)."""

from __future__ import annotations

from ordergrad_experiments.sweeps.spec import RunSpec, Sweep, register

TRANSFORM = register(
    Sweep(
        "transform",
        "the advantage transform against the sort floor, 3 repeats on this machine's CPU",
        tuple(RunSpec(f"transform-cpu-{i + 1}", "bench:transform", stage=i) for i in range(3)),
        documents=("reports/transform",),
    )
)
