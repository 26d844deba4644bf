"""Pathwise (RP) order-statistic policy gradients through a differentiable simulator.

A sibling of ``experiments/control`` (as brax's APG is of its PPO): ``config`` (the settings),
``networks`` (the squashed Gaussian policy), ``train`` (the loss and ``make_train``), ``run``
(``ordergrad-jax run brax-rp``) and ``variance`` (the RP-vs-LR study, ``run brax-variance``).
"""
