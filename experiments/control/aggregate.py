"""Tables and figures across control runs (the RESULTS.md tables): one row per run folder.

``python -m experiments.control.aggregate RUN_DIR... [--figures DIR]`` prints a markdown table of
the final evaluation (mean and Student t 95% CI over seeds of each statistic, n - 1 df:
``experiments.common.stats``), the training diagnostics of the last chunk (entropy, advantage
std, fraction of zero advantages) and the steady env-steps/s;
with ``--figures`` it also draws the learning curves and return histograms of the runs together,
one figure per env.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import numpy as np

from experiments.common import stats
from experiments.common.runs import markdown_table
from experiments.control import plots


def run_row(run_dir: str | pathlib.Path) -> dict[str, Any]:
    """The summary row of one finished run folder."""
    run_dir = pathlib.Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())["config"]
    rows, _ = plots.load_run(run_dir)
    evals = [r for r in rows if r.get("kind") == "eval"]
    train = [r for r in rows if r.get("kind") == "train"]
    out: dict[str, Any] = {"env": config["env"], "method": evals[0]["method"] if evals else "?"}
    out["seeds"] = len(evals)
    out["env_steps"] = max((r["env_steps"] for r in train), default=0)
    skip = {"kind", "method", "seed", "episodes", "std"}
    for stat in [c for c in (evals[0] if evals else {}) if c not in skip]:
        out[stat] = stats.mean_ci_cell([r[stat] for r in evals])
    last = [r for r in train if r["env_steps"] == out["env_steps"]]
    for diag in ("entropy", "adv_std", "zero_adv_frac"):
        if last and diag in last[0]:
            out[diag] = float(np.mean([r[diag] for r in last]))
    speed = [r for r in rows if r.get("kind") == "speed"]
    if speed:
        out["env_steps_per_s"] = float(speed[0]["env_steps_per_s"])
    return out


def table(run_dirs: list[str | pathlib.Path]) -> str:
    """A markdown table of :func:`run_row` for every finished run (``summary.md`` present)."""
    rows = [run_row(d) for d in run_dirs if (pathlib.Path(d) / "summary.md").exists()]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    return markdown_table(rows, columns, floatfmt=".3g")


def figures(run_dirs: list[str | pathlib.Path], out_dir: str | pathlib.Path) -> list[pathlib.Path]:
    """Learning curves and final-return histograms of the runs, one pair of PNGs per env."""
    import matplotlib.pyplot as plt

    by_env: dict[str, tuple[list, dict]] = {}
    for d in run_dirs:
        d = pathlib.Path(d)
        if not (d / "summary.md").exists():
            continue
        env = json.loads((d / "config.json").read_text())["config"]["env"]
        rows, returns = plots.load_run(d)
        acc = by_env.setdefault(env, ([], {}))
        acc[0].extend(rows)
        acc[1].update(returns)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for env, (rows, returns) in by_env.items():
        for stem, fig in {
            "curves": plots.learning_curves(rows),
            "returns": plots.return_histograms(returns),
        }.items():
            fig.axes[0].set_title(env)
            path = out_dir / f"{env}_{stem}.png"
            fig.savefig(path, dpi=110, bbox_inches="tight")
            plt.close(fig)
            paths.append(path)
    return paths


def main(argv: list[str]) -> None:
    fig_dir = None
    if "--figures" in argv:
        i = argv.index("--figures")
        fig_dir, argv = argv[i + 1], argv[:i] + argv[i + 2 :]
    print(table(argv))
    if fig_dir:
        for path in figures(argv, fig_dir):
            print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
