"""Where the package keeps files on disk: the user folder, its data and cache folders.

* ``$PROTEUS_HOME`` (default ``~/.cache/proteus``) is the user folder;
* ``<home>/data`` holds benchmark files that ``proteus data download`` fetched or a user placed;
* ``<home>/cache`` holds derived files (safe parquet copies, embeddings);
* ``$PROTEUS_DATA_DIR``, when set, names a further folder of benchmark files, looked up before
  the user folder.

The variables are read at every call, so a change of environment takes effect at once.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming a folder of benchmark files (checked before the user folder).
DATA_DIR_ENV = "PROTEUS_DATA_DIR"
#: Environment variable naming the user folder (data, caches); default ``~/.cache/proteus``.
HOME_ENV = "PROTEUS_HOME"


def proteus_home() -> Path:
    """Return the user folder: ``$PROTEUS_HOME``, else ``~/.cache/proteus``."""
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "proteus"


def user_data_dir() -> Path:
    """Return where downloaded (or hand-placed) benchmark files live: ``<proteus_home>/data``."""
    return proteus_home() / "data"


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return where derived files live: ``cache_dir`` if given, else ``<proteus_home>/cache``."""
    return Path(cache_dir).expanduser() if cache_dir is not None else proteus_home() / "cache"


def env_data_dir() -> Path | None:
    """Return the folder named by ``$PROTEUS_DATA_DIR``, or ``None`` when unset or empty."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


__all__ = ["DATA_DIR_ENV", "HOME_ENV", "cache_root", "env_data_dir", "proteus_home", "user_data_dir"]
