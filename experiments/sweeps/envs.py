"""The run behind envs/README.md's return table: ``ordergrad-jax run return-table`` (10000
episodes per policy of each risk task, seed 0)."""

from __future__ import annotations

from ordergrad_experiments.sweeps.spec import RunSpec, Sweep, register

ENVS = register(
    Sweep(
        "envs",
        "the return table of the risk tasks' reference policies (envs/README.md)",
        (RunSpec("return-table", "return-table"),),
        documents=("reports/envs",),
    )
)
