"""Policy-gradient estimators: each registered once with its spec (maths.md §5).

* LR (score function): ``g = (K/N) sum_i a_i grad log p(x_i)`` with the OrderGrad advantages
  ``a = lstat_advantage(x, k, objective)``; :func:`lr_loss` is a surrogate whose gradient is it.
* RP (pathwise): ``g = grad_theta lstat(x(theta))``: differentiate
  :func:`ordergrad_jax.lstat` through the reparameterised samples.

Both are unbiased for ``J = sum_j alpha_j E[R_(j:K)]`` when the N samples of a group are i.i.d.
from the current policy; PPO clipping, KL terms, std-normalisation or off-policy data break that.

The estimator zoo puts OrderGrad beside the estimators it is compared with, behind one signature:
``get(name, **params)`` returns ``fn(rewards (..., N), mask=None) -> (..., N)``, and
:func:`available` lists the names: ``ordergrad``, ``reinforce``, ``rloo``, ``grpo``, ``dr_grpo``,
``pkpo``, ``maxpo``, ``passk_chen``, ``cvar_pg``. :func:`spec` gives what a trainer, a study or a
report needs to know about one (its parameters, the gradient scale ``c`` of
``g = (c/N) sum_i a_i grad log p(x_i)``, whether its advantages sum to zero over a group, whether
it needs binary rewards, its label ``spec.label(**params)``, e.g. ``"MaxPO@4"``), and
:func:`register` adds one::

    @og.estimators.register("centred", params=(), gradient_scale=1.0, zero_sum=True,
                            label="Centred")
    def centred(rewards, mask=None):
        return rewards - rewards.mean(-1, keepdims=True)

Modules: :mod:`.registry` (the registry), :mod:`.ordergrad`, :mod:`.mean_baseline` (REINFORCE,
RLOO, GRPO, Dr. GRPO), :mod:`.passk` (PKPO, MaxPO, pass@k-Chen), :mod:`.cvar` (CVaR-PG) and
:mod:`.surrogates` (the LR and the clipped surrogate).
"""

# The families register themselves on import, in this order (the order of available()).
from ordergrad_jax.estimators.registry import EstimatorSpec, available, get, register, spec

from ordergrad_jax.estimators.ordergrad import ordergrad  # isort: skip
from ordergrad_jax.estimators.mean_baseline import dr_grpo, grpo, reinforce, rloo  # isort: skip
from ordergrad_jax.estimators.passk import PKPO_VARIANTS, maxpo, passk_chen, pkpo  # isort: skip
from ordergrad_jax.estimators.cvar import cvar_pg  # isort: skip
from ordergrad_jax.estimators.surrogates import clipped_surrogate, lr_loss  # isort: skip

__all__ = [
    "PKPO_VARIANTS",
    "EstimatorSpec",
    "available",
    "clipped_surrogate",
    "cvar_pg",
    "dr_grpo",
    "get",
    "grpo",
    "lr_loss",
    "maxpo",
    "ordergrad",
    "passk_chen",
    "pkpo",
    "register",
    "reinforce",
    "rloo",
    "spec",
]
