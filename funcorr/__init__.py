"""funcorr: dense functional and semantic correspondence between object images.

The Python API (:mod:`funcorr.api`)::

    model = funcorr.load("funcorr-s14")
    kettle, bottle = model.features(["kettle.png", "bottle.png"], function="pour-with")
    matches = funcorr.match(kettle, bottle)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Features", "Matches", "Model", "load", "match"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `import funcorr` (and `funcorr --help`) must not load torch.
    if name in __all__:
        from funcorr import api

        return getattr(api, name)
    raise AttributeError(f"module 'funcorr' has no attribute {name!r}")
