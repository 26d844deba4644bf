"""Adapters that plug OrderGrad into other frameworks (optional; each needs its own extra).

The core library never imports this package. ``ordergrad_jax.integrations.tunix`` needs the
``lm`` extra (``pip install "ordergrad-jax[lm]"``).
"""
