"""Table and figures of a folder of lm-rl runs (e.g. the grid of ``grid.sh``).

    python -m experiments.lm.report results/lm-grid/lm-rl

prints the markdown table of held-out pass@k (mean ± Student t 95% interval over seeds, n - 1
df) and writes ``passk_compare.png`` and ``training_compare.png`` into the folder. The committed
tables of ``reports/lm/RESULTS.md`` are ``ordergrad-jax report lm`` (``experiments/report/lm.py``).
"""

from __future__ import annotations

import pathlib
import sys

from experiments.common.runs import markdown_table
from experiments.lm import plots


def main(folder: str, ks=(1, 2, 4, 8, 16)) -> str:
    runs = plots.load_runs(folder)
    if not runs:
        raise SystemExit(f"no finished lm-rl runs (summary.md) under {folder}")
    table = markdown_table(plots.results_table(runs, list(ks)))
    for stem, fig in plots.compare_figures(runs, list(ks)).items():
        fig.savefig(pathlib.Path(folder) / f"{stem}.png", dpi=120, bbox_inches="tight")
    return table


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "results/lm-grid/lm-rl"))
