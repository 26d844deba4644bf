"""OrderGrad advantages for tunix's GRPO learner (google-tunix 0.1.7 and tunix's current API).

A tunix user switches from GRPO to OrderGrad (here TopM:2 of K = 4, the paper's main objective)
by changing the config line; the engine (0.1.7's cluster), the reward functions and the learner
stay as they are::

    from ordergrad_jax.integrations.tunix import OrderGradConfig, exact_gradient_settings
    from ordergrad_jax.integrations.tunix import make_learner

    exact = exact_gradient_settings()  # beta=0.0, num_iterations=1, ... (see below)
    algo_config = OrderGradConfig(k=4, objective="TopM:2", num_generations=8, **exact)
    # was: algo_config = GRPOConfig(num_generations=8, beta=0.0, ...); then, as before:
    learner = make_learner(rl_engine, algo_config, reward_fns=reward_fn)

:func:`make_learner` is ``GRPOLearner(rl_engine=rl_engine, algo_config=..., reward_fns=...)``
where the learner takes ``rl_engine=`` (tunix after 0.1.7, which renames ``RLCluster`` to
``RLEngine`` and logs a deprecation warning for ``rl_cluster=``), and
``GRPOLearner(rl_cluster=rl_engine, ...)`` in 0.1.7; constructing ``GRPOLearner`` yourself with
the keyword your tunix takes is the same.

Any estimator of :func:`ordergrad_jax.estimators.get` works the same way:
``OrderGradConfig(estimator="maxpo", k=4, ...)``, ``OrderGradConfig(estimator="rloo", ...)``,
with its parameters in ``estimator_params`` (e.g. ``{"variant": "s_loo"}`` for ``pkpo``).

How it plugs in. tunix looks the advantage function up by name in
``tunix.rl.function_registry`` (signature ``(rewards [B * G], num_generations=G) -> [B * G]``,
flat arrays, each prompt's G completions contiguous). :func:`register` puts our function there
under a name that encodes the estimator and its parameters. tunix 0.1.7's
``AlgorithmConfig.__post_init__`` accepts only ``"grpo"`` and ``"gae"`` as names; its own Dr.GRPO
config makes ``advantage_estimator`` a non-init field (``dataclasses.field(init=False)``) of a
``GRPOConfig`` subclass, and :class:`OrderGradConfig` does the same, filling the field in
``__post_init__`` with the registered name. ``GRPOConfig(advantage_estimator=register(...))``
also works in 0.1.7 (``GRPOConfig.__post_init__`` does not re-check the name) but relies on that.

The K/N factor (docs/maths.md §5). OrderGrad's unbiased estimate of ``grad J``
for one group is ``(K/N) sum_i a_i grad log p(y_i)``. tunix's GRPO loss uses the advantages as
given and averages the per-sequence terms over all ``B * G`` sequences of the batch, i.e. it
computes ``(1/(B N)) sum_{b,i} adv_{b,i} grad log p(y_{b,i})``. We fold the factor into the
advantage: with ``scale="paper"`` (the default) tunix receives ``adv = c * a`` with ``c`` the
estimator spec's gradient scale (``og.estimators.spec(name).gradient_scale(N, **params)``, the
paper's convention ``g = (c/N) sum_i a_i grad log p_i``; K for OrderGrad), so its update is
``(1/B) sum_b (c/N) sum_i a_{b,i} grad log p(y_{b,i})``, the paper's estimate averaged over
prompts, and the learning rate keeps its usual meaning (c is K for OrderGrad and MaxPO; 1 for
REINFORCE/RLOO/GRPO/Dr.GRPO and normalised pass@k-Chen, so no change; N for PKPO and CVaR-PG;
``kN/(N-k)`` for un-normalised pass@k-Chen; any user-registered estimator brings its own). Pass
``scale=1.0`` for the raw advantages (then fold the factor into the learning rate yourself), or
any other float.

When the update is the exact unbiased gradient. With the settings of
:func:`exact_gradient_settings` the gradient of tunix's GRPO loss is exactly the unbiased
OrderGrad LR gradient, the gradient of ``-og.lr_loss`` over the same sequence log-probabilities
(``tests/test_integrations_tunix.py`` checks the equality):

* ``beta=0.0``: no KL penalty towards the reference policy;
* ``num_iterations=1``: one update per batch, so the old policy is the current one, the
  importance ratio is exactly 1 and PPO clipping inactive;
* ``use_rollout_logps=False``, where ``GRPOConfig`` has that option (tunix after 0.1.7, whose
  default ``True`` takes the sampler's log-probabilities as the old policy when the rollout
  returns them; 0.1.7's ``GRPOConfig`` has no such field and always uses the trainer's own).
  :class:`OrderGradConfig` defaults it to ``False``;
* ``loss_agg_mode="seq-mean-token-sum"``: each sequence's term is
  ``adv * sum_t grad log p(token_t)``, the gradient of the sequence log-probability.

What breaks otherwise. ``beta > 0`` adds the KL penalty's gradient. Several iterations make the
later updates off-policy and let PPO clipping drop terms. The sampler's log-probabilities as the
old policy make the ratio ``p_trainer / p_sampler``, which differs from 1 wherever the sampler and
the trainer disagree (other kernels, precision, sampling transforms), so each term is reweighted
and may be clipped. tunix's default ``"sequence-mean-token-mean"`` divides each sequence's term by
its length (a per-sequence reweighting; a constant when all completions have equal length). Each
makes any LR estimator biased; that is a property of the surrogate, not of the advantages.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

try:
    from tunix.rl import function_registry as _function_registry
    from tunix.rl.grpo import grpo_learner as _grpo_learner
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ordergrad_jax.integrations.tunix needs google-tunix; install the 'lm' extra: "
        'pip install "ordergrad-jax[lm]"'
    ) from err

from ordergrad_jax import estimators as _estimators

__all__ = [
    "OrderGradConfig",
    "engine_keyword",
    "exact_gradient_settings",
    "gradient_scale",
    "make_advantage_estimator",
    "make_learner",
    "register",
]

AdvantageFn = Callable[..., jax.Array]


def gradient_scale(name: str, num_generations: int, **params: Any) -> float:
    """The factor ``c`` that makes tunix's batch-mean loss the estimator's paper gradient.

    tunix's loss is ``(1/(B N)) sum adv_i grad log p_i``; an estimator whose per-group gradient
    is ``(c/N) sum_i a_i grad log p_i`` needs ``adv = c a``. ``c`` is read from the estimator's
    spec: ``og.estimators.spec(name).gradient_scale(num_generations, **params)``.

    Args:
      name: an estimator name of :func:`ordergrad_jax.estimators.get`.
      num_generations: N, the group size.
      **params: the estimator's parameters (all it requires, e.g. ``k`` and ``objective``).

    Returns:
      ``c`` (a Python float): K for ordergrad and maxpo; 1 for reinforce, rloo, grpo, dr_grpo;
      N for pkpo and cvar_pg; ``k N/(N - k)`` for passk_chen with ``normalize=False``, 1 with
      the default ``normalize=True`` (maths.md §5).
    """
    return _estimators.spec(name).gradient_scale(int(num_generations), **params)


def make_advantage_estimator(
    name: str = "ordergrad", *, scale: str | float = "paper", **params: Any
) -> AdvantageFn:
    """A tunix advantage estimator ``fn(rewards [B * N], num_generations=N) -> [B * N]``.

    The flat rewards are reshaped to ``[B, N]`` (tunix keeps each prompt's N completions
    contiguous), transformed group by group with ``ordergrad_jax.estimators.get(name,
    **params)``, scaled (see the module docstring) and flattened back.

    Args:
      name: an estimator of :func:`ordergrad_jax.estimators.available` (default OrderGrad).
      scale: ``"paper"`` (fold the estimator's gradient factor into the advantages, e.g. K for
        OrderGrad; :func:`gradient_scale`) or a float multiplier (``1.0``: raw advantages).
      **params: the estimator's parameters, checked now (e.g. ``k=4, objective="TopM:2"``).

    Returns:
      The function; it raises ValueError when ``rewards.size`` is not a multiple of
      ``num_generations`` or the group size does not suit the estimator (OrderGrad needs
      ``N > K``).
    """
    fn = _estimators.get(name, **params)
    if not (scale == "paper" or (isinstance(scale, int | float) and math.isfinite(scale))):
        raise ValueError(f"scale must be 'paper' or a finite float; got {scale!r}")

    @functools.lru_cache(maxsize=32)
    def compiled(num_generations: int) -> Callable[[jax.Array], jax.Array]:
        c = gradient_scale(name, num_generations, **params) if scale == "paper" else float(scale)

        @jax.jit
        def transform(flat: jax.Array) -> jax.Array:
            groups = flat.reshape(-1, num_generations)
            return (c * fn(groups)).reshape(-1)

        return transform

    def advantage_estimator(rewards: Any, num_generations: int) -> jax.Array:
        rewards = jnp.asarray(rewards)
        if rewards.ndim != 1:
            rewards = rewards.reshape(-1)
        if not jnp.issubdtype(rewards.dtype, jnp.floating):
            rewards = rewards.astype(jnp.float32)
        n = int(num_generations)
        if n < 2 or rewards.size % n:
            raise ValueError(
                f"rewards of size {rewards.size} do not split into groups of num_generations="
                f"{num_generations}; need num_generations >= 2 dividing the number of rewards"
            )
        k = params.get("k")
        if k is not None and n <= int(k):
            raise ValueError(
                f"{name} with k={k} needs num_generations > k; got num_generations={n}"
            )
        return compiled(n)(rewards)

    label = ", ".join(f"{p}={v!r}" for p, v in sorted(params.items()))
    advantage_estimator.__name__ = f"ordergrad_jax_{_estimators.spec(name).name}"
    advantage_estimator.__doc__ = f"tunix advantage estimator: {name}({label}), scale={scale!r}."
    return advantage_estimator


def registry_name(name: str = "ordergrad", *, scale: str | float = "paper", **params: Any) -> str:
    """The tunix registry name :func:`register` uses for these settings (deterministic)."""
    label = ",".join(f"{p}={v!r}" for p, v in sorted(params.items()))
    return f"ordergrad_jax:{_estimators.spec(name).name}({label});scale={scale!r}"


def register(name: str = "ordergrad", *, scale: str | float = "paper", **params: Any) -> str:
    """Register :func:`make_advantage_estimator` with tunix's function registry.

    Args: as :func:`make_advantage_estimator`.

    Returns:
      The registered name (:func:`registry_name`), for ``GRPOConfig.advantage_estimator``;
      registering the same settings again is idempotent.
    """
    key = registry_name(name, scale=scale, **params)
    registered = _function_registry.default_registry.list_functions("advantage_estimator")
    if key not in registered:
        fn = make_advantage_estimator(name, scale=scale, **params)
        _function_registry.register_advantage_estimator(key)(fn)
    return key


def engine_keyword(learner_cls: type | None = None) -> str:
    """The keyword under which ``learner_cls.__init__`` takes the RL engine (the cluster).

    Args:
      learner_cls: a tunix learner class (default ``GRPOLearner``).

    Returns:
      ``"rl_engine"`` when ``__init__`` has that parameter (tunix after 0.1.7, where
      ``rl_cluster=`` is deprecated), else ``"rl_cluster"`` (0.1.7).
    """
    cls = _grpo_learner.GRPOLearner if learner_cls is None else learner_cls
    params = inspect.signature(cls).parameters
    return "rl_engine" if "rl_engine" in params else "rl_cluster"


def make_learner(
    rl_engine: Any,
    algo_config: Any,
    reward_fns: Any,
    *,
    learner_cls: type | None = None,
    **kwargs: Any,
) -> Any:
    """``GRPOLearner`` for ``rl_engine``, under the keyword this tunix takes (no deprecation).

    Args:
      rl_engine: tunix's ``RLEngine`` (``RLCluster`` in 0.1.7), passed as ``rl_engine=`` or
        ``rl_cluster=`` as :func:`engine_keyword` finds.
      algo_config: the algorithm config, e.g. an :class:`OrderGradConfig`.
      reward_fns: a reward function or a list of them, as tunix takes them.
      learner_cls: the learner class (default ``GRPOLearner``).
      **kwargs: further arguments of the learner (``metric_fns``, ``data_shuffle_seed``, ...).

    Returns:
      The learner.
    """
    cls = _grpo_learner.GRPOLearner if learner_cls is None else learner_cls
    engine = {engine_keyword(cls): rl_engine}
    return cls(**engine, algo_config=algo_config, reward_fns=reward_fns, **kwargs)


def exact_gradient_settings(config_cls: type | None = None) -> dict[str, Any]:
    """The config settings under which tunix's update is the exact unbiased LR gradient.

    See the module docstring ("When the update is the exact unbiased gradient") for why each is
    needed and what the others change.

    Args:
      config_cls: a tunix ``GRPOConfig`` (sub)class (default ``GRPOConfig``); only its field
        names are read.

    Returns:
      ``{"beta": 0.0, "num_iterations": 1, "loss_agg_mode": "seq-mean-token-sum"}``, plus
      ``"use_rollout_logps": False`` where ``config_cls`` has that field (tunix after 0.1.7).
    """
    cls = _grpo_learner.GRPOConfig if config_cls is None else config_cls
    settings: dict[str, Any] = {
        "beta": 0.0,
        "num_iterations": 1,
        "loss_agg_mode": "seq-mean-token-sum",
    }
    if "use_rollout_logps" in {f.name for f in dataclasses.fields(cls)}:
        settings["use_rollout_logps"] = False
    return settings


@dataclasses.dataclass(kw_only=True)
class OrderGradConfig(_grpo_learner.GRPOConfig):
    """tunix ``GRPOConfig`` whose advantages are OrderGrad's (or any ``og.estimators`` name).

    Attributes (besides GRPOConfig's):
      estimator: the ``og.estimators`` name (default ``"ordergrad"``).
      k: K, the subset size of the objective (OrderGrad, MaxPO, PKPO, pass@k-Chen).
      objective: the L-statistic for OrderGrad (preset string such as ``"TopM:2"``, ``"ReMax"``,
        ``"LowerTailMean:0.25"``, or ascending rank weights of length K).
      estimator_params: further estimator parameters (e.g. ``{"variant": "s_loo"}``).
      scale: ``"paper"`` (default: the K/N factor folded into the advantages) or a float.
      advantage_estimator: not an init argument; set to the registered tunix name.
      use_rollout_logps: only where ``GRPOConfig`` has it (tunix after 0.1.7); default
        ``False`` here (the trainer's own log-probabilities as the old policy, as 0.1.7 does),
        not tunix's ``True``: see :func:`exact_gradient_settings`.
    """

    estimator: str = "ordergrad"
    k: int | None = None
    objective: Any = None
    estimator_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    scale: str | float = "paper"
    advantage_estimator: str = dataclasses.field(default="ordergrad", init=False)
    if "use_rollout_logps" in exact_gradient_settings(_grpo_learner.GRPOConfig):
        use_rollout_logps: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        params = dict(self.estimator_params)
        if self.k is not None:
            params["k"] = self.k
        if self.objective is not None:
            if isinstance(self.objective, list | tuple | np.ndarray):
                params["objective"] = tuple(float(w) for w in np.asarray(self.objective))
            else:
                params["objective"] = self.objective
        if self.k is not None and self.num_generations <= self.k:
            raise ValueError(
                f"OrderGradConfig: num_generations must exceed k; got num_generations="
                f"{self.num_generations}, k={self.k}"
            )
        self.advantage_estimator = register(self.estimator, scale=self.scale, **params)
