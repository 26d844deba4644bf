"""The runs behind reports/variance/RESULTS.md: the full variance study (``run``) and the later
run of its estimator zoo alone (``zoo``, section 5), both at the default config and seed 0."""

from __future__ import annotations

from ordergrad_experiments.sweeps.spec import RunSpec, Sweep, register

VARIANCE = register(
    Sweep(
        "variance",
        "the estimator studies of reports/variance (the full run, then the zoo alone)",
        (RunSpec("run", "variance"), RunSpec("zoo", "variance", ("studies=zoo",), stage=1)),
        documents=("reports/variance",),
    )
)
