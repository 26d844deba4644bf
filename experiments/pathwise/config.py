"""Configuration of the pathwise trainer (``ordergrad-jax run brax-rp``; ``--set`` any field)."""

from __future__ import annotations

import dataclasses

from ordergrad_experiments.common.config import (
    BudgetConfig,
    EstimatorConfig,
    GroupsConfig,
    OptimConfig,
)

GRADIENTS = ("rp", "lr")


@dataclasses.dataclass(frozen=True)
class PathwiseConfig:
    """One training run (``num_seeds`` seeds vmapped in one jit), evaluated after each chunk.

    Each iteration samples ``groups.num_groups`` start states x ``groups.group_size`` rollouts of
    ``num_steps`` steps and ascends ``mean_g og.lstat(R[g, :], k, objective)`` (``k`` and
    ``objective`` of ``estimator``, which must be ``ordergrad``: the trainer differentiates
    ``og.lstat``) by its ``gradient``: ``rp`` through the policy and the dynamics, ``lr`` through
    the log-probabilities of the same rollouts (``og.lr_loss``).
    """

    seed: int = 0
    num_seeds: int = 1
    """Seeds ``seed, seed + 1, ...`` trained side by side (``vmap``: one compile)."""
    env: str = "brax/inverted_pendulum"
    env_params: tuple[str, ...] = ("reward=smooth",)
    """Overrides of the env's params as ``name=value`` (``ordergrad_envs.make``), e.g.
    ``backend=spring``, ``reward=smooth`` (inverted_pendulum's native reward has a zero RP
    gradient), ``push_prob=0.2``, ``push_size=2.0``, ``noise_scale=0.1`` (the brax risk variant)."""
    gradient: str = "rp"
    """``rp`` (through the simulator) or ``lr`` (likelihood ratio, same rollouts)."""
    estimator: EstimatorConfig = dataclasses.field(
        default_factory=lambda: EstimatorConfig(name="ordergrad", objective="Mean", k=4)
    )
    """``ordergrad`` only (the trainer differentiates ``og.lstat``): ``estimator.objective`` is the
    L-statistic objective (``og.lstat`` preset or weights), ``estimator.k`` its ``K``."""
    groups: GroupsConfig = dataclasses.field(
        default_factory=lambda: GroupsConfig(num_groups=16, group_size=8)
    )
    """start states per iteration x rollouts per start state (different action noise)."""
    num_steps: int = 64
    """Steps per rollout (the horizon)."""
    truncate: int = 0
    """Stop the state's gradient every ``truncate`` steps (0: through the whole horizon)."""
    action_std: float = 0.3
    """Std of the pre-tanh Gaussian action noise (the initial std with ``learn_std``)."""
    learn_std: bool = False
    """Learn a per-dimension log-std (through RP, or through the score with ``gradient=lr``)."""
    hidden: tuple[int, ...] = (32, 32)
    obs_indices: tuple[int, ...] = ()
    """The observation entries the policy sees (``()``: all), e.g. ``0,1`` for DeepHedging's time
    and log-price without the position."""
    obs_scale: tuple[float, ...] = ()
    """Multipliers of the seen entries, one each (``()``: ones): inputs of order one, e.g.
    DeepHedging's log-price in units of ``sigma sqrt(maturity)``."""
    optim: OptimConfig = dataclasses.field(
        default_factory=lambda: OptimConfig(lr=3e-3, grad_clip=1.0)
    )
    budget: BudgetConfig = dataclasses.field(
        default_factory=lambda: BudgetConfig(total=200 * 16 * 8 * 64, num_chunks=10)
    )
    """``budget.total``: environment steps per seed (iterations x num_groups x group_size x
    num_steps), rounded down to whole iterations, a multiple of ``budget.num_chunks`` (at least
    one per chunk): ``budget.num_chunks`` jitted chunks, a checkpoint and an evaluation after each
    (``BudgetConfig.iterations``)."""
    eval_groups: int = 128
    """Evaluation: ``eval_groups * group_size`` episodes of the stochastic policy per chunk."""
    final_episodes: int = 0
    """After the last chunk, the deterministic (mean-action) policy of every seed on this many
    episodes, the same ones for every seed and for the env's reference policy where it has one
    (``final.json``; ``policy_grid.json`` where the env defines a grid): 0, none
    (:mod:`ordergrad_experiments.pathwise.final`)."""
    snr_repeats: int = 0
    """The gradient SNR of RP and LR at the initial and the final policy of every seed from this
    many independent estimates each (``snr.json``); 0, none."""
    logger: tuple[str, ...] = ("jsonl",)
    """Where the metric rows go besides ``metrics.jsonl`` (always written): any of ``jsonl``
    (nothing more), ``tensorboard`` (event files in the run folder's ``tensorboard/``),
    ``wandb`` (a W&B run, offline unless ``WANDB_MODE`` says otherwise):
    ``--set logger=tensorboard,wandb`` (``experiments/common/loggers.py``)."""


QUICK = PathwiseConfig(
    env="Pendulum-v1",
    env_params=(),
    groups=GroupsConfig(num_groups=4, group_size=4),
    estimator=EstimatorConfig(name="ordergrad", objective="Mean", k=2),
    num_steps=8,
    budget=BudgetConfig(total=4 * 4 * 4 * 8, num_chunks=2),
    eval_groups=4,
    hidden=(8,),
    num_seeds=2,
)
"""CI size: gymnax Pendulum (RP through its dynamics; compiles in seconds, where RP through a brax
pipeline takes tens of seconds). ``--set env=brax/inverted_pendulum --set env_params=reward=smooth``
for the brax smoke run. ``budget``: 4 iterations of 4 x 4 episodes of 8 steps."""


def steps_per_iteration(config: PathwiseConfig) -> int:
    """Environment steps of one iteration (one seed): ``num_groups * group_size * num_steps``."""
    return config.groups.num_groups * config.groups.group_size * config.num_steps


def check(config: PathwiseConfig) -> None:
    """Raises ``ValueError`` naming the first invalid field."""
    if config.gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {GRADIENTS}; got {config.gradient!r}")
    name = config.estimator.spec().name
    if name != "ordergrad":
        raise ValueError(
            "estimator.name must be 'ordergrad' (the pathwise trainer differentiates og.lstat; "
            f"set estimator.objective and estimator.k); got {config.estimator.name!r}"
        )
    n, k = config.groups.group_size, config.estimator.k
    lr = config.gradient == "lr"
    if not 1 <= k <= n - lr:
        raise ValueError(
            f"estimator.k must be in [1, group_size{' - 1' if lr else ''}] (group_size={n}); "
            f"got k={k}"
        )
    sizes = {
        "num_groups": config.groups.num_groups,
        "group_size": n,
        "num_steps": config.num_steps,
        "budget.total": config.budget.total,
        "budget.num_chunks": config.budget.num_chunks,
        "eval_groups": config.eval_groups,
        "num_seeds": config.num_seeds,
    }
    for name, value in sizes.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1; got {value}")
    if config.final_episodes < 0 or config.snr_repeats < 0 or config.snr_repeats == 1:
        raise ValueError(
            "need final_episodes >= 0 and snr_repeats 0 or >= 2 (a variance needs two); got "
            f"{config.final_episodes}, {config.snr_repeats}"
        )
    if config.obs_scale and config.obs_indices and len(config.obs_scale) != len(config.obs_indices):
        raise ValueError(
            f"obs_scale needs one value per entry of obs_indices {config.obs_indices}; got "
            f"{config.obs_scale}"
        )
    if config.truncate < 0 or config.action_std <= 0:
        raise ValueError(
            f"need truncate >= 0 and action_std > 0; got {config.truncate}, {config.action_std}"
        )
