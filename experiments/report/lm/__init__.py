"""The tables and figures of ``reports/lm/RESULTS.md``, from the data committed beside it.

One module per part of the document, each reading its folder of ``reports/lm/``:

* :mod:`~ordergrad_experiments.report.lm.runs`: reading the LM runs and their evaluations (shared);
* :mod:`~ordergrad_experiments.report.lm.learning`: why RL did not learn at first (``learning/``);
* :mod:`~ordergrad_experiments.report.lm.grid`: the 50-step grid and the learning-rate runs
  (``grid/``, ``lr/``);
* :mod:`~ordergrad_experiments.report.lm.speed`: the step-time split (``speed/lm-speed/``);
* :mod:`~ordergrad_experiments.report.lm.default`: the default setting (``default/``);
* :mod:`~ordergrad_experiments.report.lm.study`: the pass@k study (``study/``);
* :mod:`~ordergrad_experiments.report.lm.length`: the length comparison (``length/``);
* :mod:`~ordergrad_experiments.report.lm.matched`: the study and the length comparison at matched
  pass@1, with Holm's correction, and the A/A pair (``study/``, ``length/``);
* :mod:`~ordergrad_experiments.report.lm.frontier`: the bandit's predicted frontiers beside the
  study's (``study/``);
* :mod:`~ordergrad_experiments.report.lm.testbed`: the LM testbed, its starts, step-size grid,
  bandit prediction and study, from per-prompt counts (``testbed/``).

``ordergrad-jax report lm [--check]`` rebuilds (compares) the tables (:func:`builders`);
``--figures`` redraws the figures of ``reports/lm/figures/`` (:func:`draw_figures`).
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

from ordergrad_experiments.common.runs import find_runs


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """Every table of ``reports/lm/RESULTS.md`` by id (``folder``: ``reports/lm``); the tables
    of a section only where its folder exists (a table marked in the document without its data
    is then an error of ``report``)."""
    from ordergrad_experiments.report.lm import (
        default,
        frontier,
        grid,
        learning,
        length,
        matched,
        speed,
        study,
        testbed,
    )

    out = learning.builders(folder)
    out.update(grid.builders(folder))
    if (folder / "speed").is_dir():
        out["lm-speed"] = lambda: speed.speed_table(folder / "speed" / "lm-speed")
    if (folder / "default").is_dir():
        out.update(default.builders(folder))
    if (folder / "study").is_dir():
        out.update(study.builders(folder))
        out.update(matched.builders(folder))
        out.update(frontier.builders(folder))
    if (folder / "length").is_dir():
        out.update(length.builders(folder))
    out.update(testbed.builders(folder))
    return out


def figures(folder: pathlib.Path) -> dict[str, Callable[[], dict[str, Any]]]:
    """``{section: draw}`` where ``draw()`` returns ``{stem: matplotlib figure}`` of the figures
    of ``reports/lm/figures/`` drawn from that section's folder (``folder``: ``reports/lm``),
    for the sections whose folder holds runs."""
    from ordergrad_experiments.report.lm import default, frontier, grid, length, study, testbed

    draw: dict[str, Callable[[], dict[str, Any]]] = {
        "grid": lambda: grid.compare_figures(folder / "grid"),
        "default": lambda: {"default": default.draw_figure(folder / "default")},
        "study": lambda: {
            "study_passk": study.draw_figure(folder / "study"),
            "bandit_frontier": frontier.draw_figure(folder / "study"),
        },
        "length": lambda: {"length": length.draw_figure(folder / "length")},
    }
    out = {s: f for s, f in draw.items() if (folder / s).is_dir() and find_runs(folder / s)}
    if testbed.study_complete(folder / "testbed"):  # drawn once the study is complete
        out["testbed"] = lambda: {"testbed_frontier": testbed.draw_figure(folder / "testbed")}
    return out


FIGURE_DPI = {"lm_passk_compare": 120, "lm_training_compare": 120}
"""The resolution of each figure (PNG): 110 dpi unless named here."""


def draw_figures(folder: pathlib.Path) -> list[pathlib.Path]:
    """Redraws every figure of :func:`figures` into ``folder / "figures"`` and returns the
    paths written (``folder``: ``reports/lm``)."""
    from ordergrad_experiments.report.figures import save_png

    written = []
    for draw in figures(folder).values():
        for stem, fig in draw().items():
            target = folder / "figures" / f"{stem}.png"
            written.append(save_png(fig, target, dpi=FIGURE_DPI.get(stem, 110)))
    return written
