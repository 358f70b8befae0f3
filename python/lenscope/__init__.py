"""lenscope: what a language model does on the text in your workspace, token by token.

The core library: models, analysis, the wire schema. No Jupyter or tornado imports here.
Names are imported lazily so that light users (the server's schema and error mapping) do not
pay for importing torch.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

__version__ = importlib.metadata.version("lenscope")  # one version: package.json's (hatch-nodejs-version)

_EXPORTS = {
    "analyze": "lenscope.analysis",
    "unit_activations": "lenscope.activations",
    "UnitActivations": "lenscope.activations",
    "parse_unit": "lenscope.units",
    "attribute": "lenscope.attribution",
    "Attribution": "lenscope.attribution",
    "attend": "lenscope.attention",
    "AttentionResult": "lenscope.attention",
    "logit_lens": "lenscope.logitlens",
    "LogitLens": "lenscope.logitlens",
    "AnalysisResult": "lenscope.analysis",
    "Predictions": "lenscope.analysis",
    "LenscopeError": "lenscope.errors",
    "InvalidInput": "lenscope.errors",
    "InputTooLarge": "lenscope.errors",
    "UnknownModel": "lenscope.errors",
    "ModelUnavailable": "lenscope.errors",
    "DEFAULT_MODEL": "lenscope.models.registry",
    "list_models": "lenscope.models.registry",
    "load_model": "lenscope.models.registry",
    # a model of a notebook's kernel, served to the panel over a comm: the kernel half of the
    # server extension (it imports ipykernel and comm, never jupyter_server)
    "attach": "lenscope_server.kernel_side",
    "detach": "lenscope_server.kernel_side",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lenscope' has no attribute {name!r}")
