"""Smoke tests of the experiment framework and the variance study at tiny sizes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from ordergrad_experiments import cli, registry
from ordergrad_experiments.common.runs import Run, RunWriter
from ordergrad_experiments.variance import config, plots, studies
from ordergrad_experiments.variance import run as variance_run

TINY = dataclasses.replace(
    config.QUICK,
    unbiased_batches=2_000,
    unbiased_repeats=1,
    lr_batches=1_000,
    lr_modes=("linear",),
    rp_dims=(1,),
    rp_batches=300,
    snr_ks=(1, 3),
    snr_ns=(5, 9),
    snr_arms=(4,),
    snr_batches=300,
    zoo_batches=300,
    studies=("unbiasedness", "lr_vs_exact", "rp_vs_lr", "snr"),
)


@pytest.mark.once  # the run folder's contract: the dtype does not change it
def test_run_writes_a_complete_folder(tmp_path):
    overrides = (
        "studies=unbiasedness,lr_vs_exact",
        "unbiased_batches=2000",
        "unbiased_repeats=1",
        "lr_batches=500",
        "lr_modes=linear",
    )
    args = ["run", "variance", "--quick", "--out", str(tmp_path), "--run-id", "r1"]
    assert cli.main([*args, *(a for o in overrides for a in ("--set", o))]) == 0
    path = tmp_path / "variance" / "r1"
    saved = json.loads((path / "config.json").read_text())["config"]
    assert saved["studies"] == ["unbiasedness", "lr_vs_exact"] and saved["lr_batches"] == 500
    rows = Run(path).metrics
    assert {r["study"] for r in rows} == {"unbiasedness", "unbiasedness_slope", "lr_vs_exact"}
    for stem in ("unbiasedness", "lr_vs_exact"):
        assert (path / f"{stem}.png").stat().st_size > 0 and (path / f"{stem}.pdf").exists()
    assert "Unbiasedness" in (path / "summary.md").read_text()
    assert not list(path.glob(".*"))  # no temporary files left behind


@pytest.mark.once  # plumbing; the numerics are tested in float64 by the tests around it
def test_all_studies_at_tiny_size(tmp_path):
    rows = variance_run.run(TINY, RunWriter("variance", tmp_path, "tiny"))
    by_study = {r["study"] for r in rows}
    assert {"unbiasedness", "lr_vs_exact", "rp_vs_lr", "snr"} <= by_study
    for r in rows:
        for key in ("error", "rel_error", "total_var", "snr"):
            if key in r:
                assert np.isfinite(r[key]) and r[key] >= 0, r
    _assert_labelled(plots.all_figures(rows))
    # TrimM:1 does not exist at K = 1: the K = 1 sweep leaves it out instead of failing
    assert not [
        r for r in rows if r.get("sweep") == "K" and r["value"] == 1 and r["objective"] == "TrimM:1"
    ]


def test_unbiasedness_errors_shrink():
    r = studies.arm_values("gaussian", 4)
    logits = studies.bandit_logits(4)
    grid = np.array([10, 10_000])
    fn = studies.make_unbiasedness(r, logits, 6, 3, np.array([0, 0.5, 0.5]), 10_000, grid)
    import jax

    errors = fn(jax.random.key(0))
    for name, err in errors.items():
        assert float(err[1]) < 0.3 * float(err[0]), name  # sqrt(1000) = 31x more batches


def test_bad_experiment_and_override(tmp_path):
    with pytest.raises(ValueError, match="unknown experiment 'nope'; available: variance"):
        registry.get("nope")
    with pytest.raises(ValueError, match="key=value"):
        cli.apply_overrides(config.QUICK, ("no_such_key=1",))
    with pytest.raises(ValueError, match="unknown studies"):
        variance_run.run(dataclasses.replace(TINY, studies=("nope",)), RunWriter("v", tmp_path))
    assert cli.apply_overrides(config.QUICK, ("seed=3",)).seed == 3
    # tuples: comma-separated, one value, or none (key=)
    assert cli.apply_overrides(config.QUICK, ("rp_dims=1,2",)).rp_dims == (1, 2)
    assert cli.apply_overrides(config.QUICK, ("rp_dims=4",)).rp_dims == (4,)
    assert cli.apply_overrides(config.QUICK, ("rp_dims=",)).rp_dims == ()
    with pytest.raises(ValueError, match="is not a valid seed"):
        cli.apply_overrides(config.QUICK, ("seed=",))


def _assert_labelled(figures: dict) -> None:
    """Every panel of every figure names both axes."""
    import matplotlib.pyplot as plt

    assert figures
    for stem, fig in figures.items():
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel(), (stem, ax.get_title())
        plt.close(fig)


def test_zoo_figure_has_a_colour_legend_of_targets():
    methods = [("ordergrad", "max@4", 0.3), ("rloo", "mean", 0.2), ("grpo", "mean", 1.0)]
    rows = [
        {"study": "zoo", "method": m, "bandit": "gaussian", "target": target}
        | {"rel_bias": 0.01, "bias_se": 0.005, "rel_var": v}
        for m, target, v in methods
    ]
    fig = plots.zoo(rows)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert legends and {t.get_text() for t in legends[0].get_texts()} == {"max@4", "mean"}
    _assert_labelled({"zoo": fig})


@pytest.mark.parametrize("name", ["control", "lm-rl", "brax-rp"])
def test_every_trainer_config_field_is_a_set_key(name):
    """Every leaf of the control, LM and pathwise configs (nested parts included) has a unique
    bare name, and ``--set bare=value`` / ``--set dotted.path=value`` parse back to the field's
    value."""
    from ordergrad_experiments.common.config import leaf_paths, resolve_key

    quick = registry.get(name).quick

    def get(config, path):
        for part in path.split("."):
            config = getattr(config, part)
        return config

    for path in leaf_paths(quick):
        value = get(quick, path)
        bare = path.rsplit(".", 1)[-1]
        assert resolve_key(quick, bare) == path
        if value == ():
            continue
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        assert cli.apply_overrides(quick, (f"{bare}={text}",)) == quick, path
        assert cli.apply_overrides(quick, (f"{path}={text}",)) == quick, path
    changed = cli.apply_overrides(quick, ("estimator.name=cvar_pg", "options=alpha=0.25"))
    assert changed.estimator.resolve(changed.groups.group_size).label() == "cvar_pg[alpha=0.25]"


@pytest.mark.parametrize(
    ("text", "want"), [("true", True), ("True", True), ("yes", True), ("1", True), ("false", False)]
)
def test_bool_set_values_in_any_case(text, want):
    """`--set multihost=true` (the spelling users type) parses like `True`; junk is refused."""
    from ordergrad_experiments.lm.config import LMConfig

    assert cli.apply_overrides(LMConfig(), (f"multihost={text}",)).cluster.multihost is want
    with pytest.raises(ValueError, match="not a valid multihost"):
        cli.apply_overrides(LMConfig(), ("multihost=maybe",))


@pytest.mark.parametrize("spi", [1, 3, 64, 8192])
@pytest.mark.parametrize("chunks", [1, 2, 7, 10])
def test_budget_iterations_fill_the_budget_in_whole_chunks(spi, chunks):
    """``BudgetConfig.iterations``: equal chunks of whole iterations that fit in ``total`` (the
    largest such count), and at least one iteration per chunk when the budget is smaller."""
    from ordergrad_experiments.common.config import BudgetConfig

    for total in (0, 1, spi - 1, spi, 5 * spi + 1, 97 * spi, 1_000_003):
        per_chunk, n = BudgetConfig(total, chunks).iterations(spi)
        assert n == chunks and per_chunk >= 1
        if total >= chunks * spi:  # fits, and one more iteration per chunk would not
            assert per_chunk * chunks * spi <= total < (per_chunk + 1) * chunks * spi
        else:
            assert per_chunk == 1
    assert BudgetConfig(16_000, 2).iterations(2 * 8 * 100) == (5, 2)  # control's QUICK
    with pytest.raises(ValueError, match="num_chunks"):
        BudgetConfig(100, 0).iterations(spi)


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        ("control", "total_env_steps", "budget.total"),
        ("brax-rp", "iterations", "budget.total"),
        ("lm-rl", "steps", "budget.total"),
    ],
)
def test_old_budget_names_say_the_new_one(name, old, new):
    """One budget name: the old ``--set`` names of each trainer raise one line naming it."""
    quick = registry.get(name).quick
    with pytest.raises(ValueError, match=f"{old}.*renamed.*{new}") as err:
        cli.apply_overrides(quick, (f"{old}=10",))
    assert "\n" not in str(err.value)
    assert cli.apply_overrides(quick, (f"{new}=10",)).budget.total == 10
