"""Configuration of the variance study (typed; `--set key=value` overrides any field)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class VarianceConfig:
    """Sizes of the six estimator studies. Defaults are the full study (a GPU/TPU VM job);
    :data:`QUICK` runs in about 25 s on an idle 2-core CPU."""

    seed: int = 0
    objectives: tuple[str, ...] = ("ReMax", "TopM:2", "Median", "LowerTailMean:0.25", "TrimM:1")
    """Objectives of the sweeps (a preset that does not exist at some K is left out there)."""
    studies: tuple[str, ...] = ("unbiasedness", "lr_vs_exact", "rp_vs_lr", "snr", "zoo", "runtime")
    # 1. unbiasedness convergence
    unbiased_arms: int = 5
    unbiased_n: int = 8
    unbiased_k: int = 4
    unbiased_objective: str = "TopM:2"
    unbiased_batches: int = 200_000
    unbiased_repeats: int = 8
    # 2. LR vs exact gradients on softmax bandits
    lr_modes: tuple[str, ...] = ("gaussian", "linear", "exponential")
    lr_arms: int = 6
    lr_n: int = 16
    lr_k: int = 4
    lr_batches: int = 200_000
    # 3. RP vs LR on the Gaussian location model
    rp_rewards: tuple[str, ...] = ("quadratic", "quadratic_sine")
    rp_dims: tuple[int, ...] = (1, 2, 4, 8)
    rp_n: int = 16
    rp_k: int = 4
    rp_batches: int = 50_000
    # 4. variance and SNR sweeps (Gaussian location, reward quadratic_sine, dim snr_dim; bandit
    #    with exponential rewards for the number of arms)
    snr_dim: int = 2
    snr_ks: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    snr_n_for_k: int = 64
    snr_ns: tuple[int, ...] = (5, 8, 16, 32, 64, 128, 256)
    snr_k_for_n: int = 4
    snr_arms: tuple[int, ...] = (4, 8, 16)
    snr_bandit_n: int = 16
    snr_bandit_k: int = 4
    snr_batches: int = 20_000
    # 5. OrderGrad vs the estimator zoo (binary-reward bandit for pass@k methods)
    zoo_arms: int = 6
    zoo_n: int = 16
    zoo_k: int = 4
    zoo_batches: int = 50_000
    # 6. runtime (the transform benchmark)
    runtime_quick: bool = False


QUICK = VarianceConfig(
    unbiased_batches=20_000,
    unbiased_repeats=2,
    lr_batches=20_000,
    rp_dims=(1, 4),
    rp_batches=4_000,
    snr_ks=(1, 4, 8),
    snr_ns=(5, 64),
    snr_arms=(4, 16),
    snr_batches=2_000,
    zoo_batches=5_000,
    runtime_quick=True,
    lr_modes=("gaussian", "exponential"),
)
