"""A package's public API loaded on first use (PEP 562), for the trainer packages' ``__init__``.

A trainer package lists its public names with the submodule attribute each one is, and gets a
module ``__getattr__`` and ``__dir__``: importing the package imports no submodule, and
``from ordergrad_experiments.control import make_train`` imports only
``ordergrad_experiments.control.run``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def public_api(
    package: str, public: Mapping[str, tuple[str, str]], names: Sequence[str], namespace: dict
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` of ``package``.

    Args:
      package: the package's ``__name__``.
      public: public name -> ``(submodule, attribute)`` (``{"make_train": ("run", "make_train")}``).
      names: the package's ``__all__``.
      namespace: the package's ``globals()``: a resolved name is cached there.
    """

    def __getattr__(name: str) -> Any:
        """The public ``name``, its submodule imported on first access."""
        if name not in public:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = public[name]
        value = getattr(importlib.import_module(f".{module}", package), attribute)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *names})

    return __getattr__, __dir__
