"""Attributes of a package that import their module on first access (PEP 562), so that
``import ddim_edu`` stays light and every documented ``de.<name>`` still works."""
from __future__ import annotations

import importlib


def lazy_attributes(package: str, names: dict[str, str]):
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps an attribute to the
    module (relative to ``package``, e.g. ``".plotting"``) that defines it, or to itself
    (``{"viz": ".viz"}``) for a submodule."""
    def __getattr__(attr: str):
        if attr not in names:
            raise AttributeError(f"module {package!r} has no attribute {attr!r}")
        module = importlib.import_module(names[attr], package)
        value = module if module.__name__.rpartition(".")[2] == attr else getattr(module, attr)
        importlib.import_module(package).__dict__[attr] = value   # later lookups skip __getattr__
        return value

    def __dir__():
        loaded = (k for k in importlib.import_module(package).__dict__ if not k.startswith("_"))
        return sorted(set(loaded) | set(names))

    return __getattr__, __dir__
