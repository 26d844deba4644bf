"""The tables and figures of ``reports/variance/RESULTS.md``, built from the run folder committed
beside it.

``reports/variance/run/`` is the folder of one ``ordergrad-jax run variance`` (its
``config.json`` and ``metrics.jsonl``; the figures it drew). Each table is the one
``ordergrad_experiments.variance.summary`` makes for that section, and each figure the one the run
draws (``ordergrad_experiments.variance.all_figures``), so the document and a new run's
``summary.md`` and figures agree by construction. ``ordergrad-jax report variance --figures``
redraws the figures.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable

from ordergrad_experiments.common.runs import Run

# The summary's sections by number, named after the study each table reports.
SECTIONS = {1: "unbiasedness", 2: "lr_vs_exact", 3: "rp_vs_lr", 4: "snr", 5: "zoo", 6: "runtime"}
RUN = "run"
RERUNS = {"zoo": "zoo"}
"""Sections rebuilt from a later run of their study alone (``--set studies=NAME``) in
``folder / RERUNS[name]``: the zoo since the estimator specs give its gradient scales (issue 23:
normalised Chen pass@k is scaled by the spec's c = 1, not k/(N-k) as before)."""


def summary_tables(run_dir: pathlib.Path) -> dict[str, str]:
    """``{section name: markdown table}`` of the summary of the run in ``run_dir``."""
    from ordergrad_experiments.variance import VarianceConfig, summary

    run = Run(run_dir)
    saved = run.config
    config = VarianceConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})
    tables = {}
    for section in re.split(r"^## ", summary(config, run.metrics), flags=re.M)[1:]:
        number = int(section.split(".", 1)[0])
        lines = [line for line in section.splitlines() if line.startswith("|")]
        tables[SECTIONS[number]] = "\n".join(lines) + "\n"
    return tables


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """Every table of the document by id (the summary is computed once, on the first call)."""
    cache: dict[str, str] = {}

    def build(name: str) -> str:
        if not cache:
            cache.update(summary_tables(folder / RUN))
            for section, rerun in RERUNS.items():
                cache[section] = summary_tables(folder / rerun)[section]
        return cache[name]

    return {name: (lambda name=name: build(name)) for name in SECTIONS.values()}


# The document's figures that are drawn from the committed run: {stem: path under the folder}.
FIGURES = {"snr": "figures/snr.png"}


def draw_figures(folder: pathlib.Path) -> list[pathlib.Path]:
    """Redraws :data:`FIGURES` from the committed run in ``folder / RUN``: the figures that
    ``ordergrad-jax run variance`` draws from its rows (every figure, in its order, so the colours
    match), written as PNG at the run writer's resolution (:func:`save_png`); returns the paths."""
    import matplotlib.pyplot as plt

    from ordergrad_experiments.report.figures import save_png, use_agg
    from ordergrad_experiments.variance import all_figures

    use_agg()
    figures = all_figures(Run(folder / RUN).metrics)
    written = []
    for stem, relative in FIGURES.items():
        figures[stem].tight_layout()  # panels with their own y label overlap without it
        written.append(save_png(figures.pop(stem), folder / relative))
    for fig in figures.values():
        plt.close(fig)
    return written
