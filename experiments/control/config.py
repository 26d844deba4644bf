"""Configuration of the control benchmark (typed; ``--set key=value`` overrides any field).

The optimiser, the groups, the estimator and the budget are the shared parts of
``experiments/common/config.py`` (``--set optim.lr=1e-3``, ``--set group_size=16``,
``--set estimator.name=rloo``, ``--set estimator.options=alpha=0.25``,
``--set budget.total=1000000``: environment steps per seed).
"""

from __future__ import annotations

import dataclasses

from ordergrad_experiments.common.config import (
    BudgetConfig,
    EstimatorConfig,
    GroupsConfig,
    OptimConfig,
)


@dataclasses.dataclass(frozen=True)
class ControlConfig:
    """One training run (``num_seeds`` seeds vmapped in one jit) and its final evaluation.

    ``algo="group_pg"``: each iteration samples ``groups.num_groups`` groups of
    ``groups.group_size`` episodes of at most ``num_steps`` steps; every episode's advantage comes
    from the ``estimator`` (any ``og.estimators`` name) over its group's returns; ``update="lr"``
    takes one gradient step on the LR surrogate ``(c/N) sum_i a_i log p_i`` (``c`` the
    estimator's gradient scale, K for OrderGrad), ``update="clip"`` takes ``update_epochs``
    PPO-clipped steps with that advantage on every step of the episode.
    ``algo="ppo"``: PPO + GAE on ``num_envs`` auto-resetting envs x ``ppo_steps`` steps.
    """

    seed: int = 0
    env: str = "CartPole-v1"
    env_params: tuple[str, ...] = ()
    """Overrides of the env's params as ``name=value`` (floats), e.g. ``slip_prob=0.2``."""
    train_env_params: tuple[str, ...] = ()
    """Further overrides for the training episodes only (evaluation, gradient probes and the
    reported returns' task keep ``env_params``): a sampler that over-samples hard conditions,
    e.g. ``guard_prob=0.5`` on ``GuardedMaze-v0``. The returns are not re-weighted, so training
    ascends the objective on the tilted task (Greenberg et al. 2022's sampler idea, with a
    fixed tilt); the spaces must be the task's."""
    algo: str = "group_pg"
    estimator: EstimatorConfig = dataclasses.field(
        default_factory=lambda: EstimatorConfig(name="ordergrad", objective="Mean", k=4)
    )
    """The group-PG advantage: ``objective`` is the OrderGrad preset (``Mean``,
    ``LowerTailMean:0.25``, ``ReMax``, ``TopM:2``...), ``k`` the K of ordergrad/maxpo/pkpo/
    passk_chen, ``options`` the rest (``alpha=0.1``: the tail fraction of cvar_pg)."""
    warm_start_frac: float = 0.0
    """ordergrad only: the first ``warm_start_frac`` of the iterations use
    ``warm_start_objective`` (a schedule: e.g. the mean first, then the lower tail)."""
    warm_start_objective: str = "Mean"
    warm_start_schedule: str = "step"
    """``"step"``: ``warm_start_objective`` for the first ``warm_start_frac`` of the iterations,
    then the objective; ``"linear"``: a soft-risk schedule, the rank weights moving linearly from
    the warm objective's (first iteration) to the objective's (from ``warm_start_frac`` on)."""
    groups: GroupsConfig = dataclasses.field(default_factory=lambda: GroupsConfig(8, 8))
    num_steps: int = 500
    """Episode cap T of group_pg (and of the evaluation episodes)."""
    train_reward: str = "return"
    """What group-PG's estimator ranks: the episode ``return`` or ``success`` (0/1, return >=
    success_return; needed by passk_chen)."""
    update: str = "lr"
    update_epochs: int = 4
    num_minibatches: int = 4
    clip_eps: float = 0.2
    optim: OptimConfig = dataclasses.field(
        default_factory=lambda: OptimConfig(lr=3e-3, grad_clip=0.5, adam_eps=1e-5)
    )
    hidden: tuple[int, ...] = (64, 64)
    init_log_std: float = -0.5
    entropy_coef: float = 0.0
    entropy_schedule: str = "constant"
    """group_pg only: ``"constant"`` keeps ``entropy_coef`` for the whole run; ``"linear"``
    decays it linearly from ``entropy_coef`` at the first iteration to 0 at the last (exploration
    kept alive early, e.g. past a ``warm_start_frac`` switch, and a near-deterministic policy at
    the end)."""
    # PPO + GAE
    num_envs: int = 4
    ppo_steps: int = 128
    gamma: float = 0.99
    gae_lambda: float = 0.95
    vf_coef: float = 0.5
    # budget and logging
    budget: BudgetConfig = dataclasses.field(
        default_factory=lambda: BudgetConfig(total=500_000, num_chunks=10)
    )
    """``budget.total``: environment steps per seed (each seed's samples count once), rounded
    down to whole iterations (at least one per chunk); ``budget.num_chunks`` jitted chunks with a
    checkpoint after each."""
    num_seeds: int = 5
    logger: tuple[str, ...] = ("jsonl",)
    """Where the metric rows go besides ``metrics.jsonl`` (always written): any of ``jsonl``
    (nothing more), ``tensorboard`` (event files in the run folder's ``tensorboard/``),
    ``wandb`` (a W&B run, offline unless ``WANDB_MODE`` says otherwise):
    ``--set logger=tensorboard,wandb`` (``experiments/common/loggers.py``)."""
    # evaluation of the final policies
    eval_episodes: int = 1000
    eval_k: int = 8
    """K of the reported max@K (and pass@K of successes)."""
    cvar_alpha: float = 0.1
    """Level of the reported CVaR of returns (an evaluation statistic)."""
    success_return: float | None = None
    """An episode with return >= this counts as a success (None: no success rate)."""


QUICK = ControlConfig(
    groups=GroupsConfig(num_groups=2, group_size=8),
    num_steps=100,
    budget=BudgetConfig(16_000, 2),
    num_seeds=2,
    eval_episodes=1000,
)
"""CI size: CartPole, 2 seeds, 10 iterations in 2 chunks (seconds on a 2-core CPU)."""
