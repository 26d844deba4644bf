"""The tables of ``reports/variance/RESULTS.md``, built from the run folder committed beside it.

``reports/variance/run/`` is the folder of one ``ordergrad-jax run variance`` (its
``config.json`` and ``metrics.jsonl``; the figures it drew). Each table is the one
``experiments.variance.run.summary`` makes for that section, so the document and a new run's
``summary.md`` agree by construction.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from collections.abc import Callable

# The summary's sections by number, named after the study each table reports.
SECTIONS = {1: "unbiasedness", 2: "lr_vs_exact", 3: "rp_vs_lr", 4: "snr", 5: "zoo", 6: "runtime"}
RUN = "run"


def summary_tables(run_dir: pathlib.Path) -> dict[str, str]:
    """``{section name: markdown table}`` of the summary of the run in ``run_dir``."""
    from experiments.variance.config import VarianceConfig
    from experiments.variance.run import summary

    saved = json.loads((run_dir / "config.json").read_text())["config"]
    config = VarianceConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    tables = {}
    for section in re.split(r"^## ", summary(config, rows), flags=re.M)[1:]:
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
        return cache[name]

    return {name: (lambda name=name: build(name)) for name in SECTIONS.values()}


# The document's figures that are drawn from the committed run: {stem: path under the folder}.
FIGURES = {"snr": "figures/snr.png"}


def draw_figures(folder: pathlib.Path) -> list[pathlib.Path]:
    """Redraws :data:`FIGURES` from the committed run in ``folder / RUN``: the figures that
    ``ordergrad-jax run variance`` draws from its rows (every figure, in its order, so the colours
    match), written as PNG atomically at the run writer's resolution, without a version stamp."""
    import matplotlib

    matplotlib.use("Agg")
    from experiments.common.io import atomic_temp_path
    from experiments.variance import plots

    figures = plots.all_figures(plots.load_rows(folder / RUN))
    written = []
    for stem, relative in FIGURES.items():
        target = folder / relative
        figures[stem].tight_layout()  # panels with their own y label overlap without it
        fd, tmp = atomic_temp_path(target, suffix=".png")
        os.close(fd)
        try:
            figures[stem].savefig(
                tmp, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None}
            )
            os.replace(tmp, target)
        finally:
            pathlib.Path(tmp).unlink(missing_ok=True)
        written.append(target)
    return written


if __name__ == "__main__":
    from experiments.report import repo_root

    for path in draw_figures(repo_root() / "reports" / "variance"):
        print(f"wrote {path}")
