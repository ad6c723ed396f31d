"""Ray is optional (the ``[ray]`` extra): one import guard with one message for every Ray feature.

    ray = require_ray("proteus sweep")     # the ray module, or an ImportError saying how to install it

Nothing here imports Ray at module import time; ``import proteus_env`` never does.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The distribution name of this package (``pyproject.toml``'s ``[project] name``).
DISTRIBUTION = "proteus-routing-gym"
#: How to install the Ray features.
INSTALL_HINT = f"pip install '{DISTRIBUTION}[ray]'"


def require_ray(feature: str, module: str = "ray") -> ModuleType:
    """Import ``module`` (``ray``, ``ray.tune``, ``ray.rllib``, ...) for ``feature``.

    Args:
        feature: What needs it, for the message (``"proteus sweep"``, ``"register_rllib_envs()"``).
        module: The module to import.

    Returns:
        The imported module.

    Raises:
        ImportError: If Ray (or that part of it) is not installed; the message names ``feature``
            and the install command.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or module
        raise ImportError(f"{feature} needs Ray ({module}), which is not installed (missing module {missing!r}): "
                          f"{INSTALL_HINT}") from None
