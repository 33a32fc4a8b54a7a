"""Package names that load with their module on first use.

The command line builds its parser from several packages; importing torch there would make
``funcorr --help`` take seconds. Packages whose modules need torch export their names through
:func:`lazy_exports` instead of importing them in ``__init__``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(
    package: str, modules: dict[str, tuple[str, ...]]
) -> tuple[Callable[[str], object], list[str]]:
    """``(__getattr__, __all__)`` for ``package``: each name in ``modules[path]`` is imported
    from the module ``path`` the first time it is asked for."""
    exports = {name: path for path, names in modules.items() for name in names}

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__, sorted(exports)
