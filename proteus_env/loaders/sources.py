"""Where benchmark files come from: pinned hub files, local folders, checksums and downloads.

A loader looks for its files in this order:

1. an explicit ``data_path``;
2. the folder named by the environment variable ``PROTEUS_DATA_DIR``;
3. the user data folder ``$PROTEUS_HOME/data`` (default ``~/.cache/proteus/data``), where
   ``proteus data download`` puts files, together with the safe caches in ``$PROTEUS_HOME/cache``;
4. the Hugging Face hub, when ``huggingface_hub`` is installed and the network answers: the file
   is fetched at a pinned revision into the user data folder and its sha256 is checked;
5. otherwise a :class:`DataNotFoundError` (a ``FileNotFoundError``) says which file to put where.

The pins (revision, sha256, size) below were read from the hub's file pages and two independent
public projects that hash the same files; values nobody could confirm are ``None``. A pickle is
never unpickled unless its sha256 equals a pinned value or the caller passes ``trust_pickle=True``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

# The folder functions live in proteus_env.paths; re-exported here for existing callers.
from proteus_env.paths import DATA_DIR_ENV as DATA_DIR_ENV
from proteus_env.paths import HOME_ENV as HOME_ENV
from proteus_env.paths import cache_root as cache_root
from proteus_env.paths import env_data_dir as env_data_dir
from proteus_env.paths import proteus_home as proteus_home
from proteus_env.paths import user_data_dir as user_data_dir


@dataclasses.dataclass(frozen=True)
class HubFile:
    """One file of a Hugging Face dataset repository, pinned as far as it is known.

    Attributes:
        repo_id: Dataset repository, for example ``"withmartian/routerbench"``.
        filename: Path of the file inside the repository.
        revision: Commit to download from; ``None`` when no commit could be confirmed (the
            default branch is used then, and the file is reported as unpinned).
        sha256: Expected sha256 of the file's bytes, or ``None`` when unknown.
        size: Expected size in bytes, or ``None`` when unknown.
    """

    repo_id: str
    filename: str
    revision: str | None
    sha256: str | None
    size: int | None = None

    @property
    def url(self) -> str:
        """Human-readable address of the file on the hub (for messages, never fetched here)."""
        return f"https://huggingface.co/datasets/{self.repo_id}/blob/{self.revision or 'main'}/{self.filename}"


ROUTERBENCH_REPO = "withmartian/routerbench"
# Head of `main` (commit "Delete routerbench_rag.pkl"); the two pickles were uploaded in a4dcf98 and
# have not changed since. sha256 of the 0-shot file and its size: hub file page and two public
# projects that pin it; sha256 of the 5-shot file: the hub's LFS pointer (and one public project).
ROUTERBENCH_REVISION = "784021482c3f320c6619ed4b3bb3b41a21424fcb"
ROUTERBENCH_FILES: dict[str, HubFile] = {
    "0shot": HubFile(
        ROUTERBENCH_REPO,
        "routerbench_0shot.pkl",
        ROUTERBENCH_REVISION,
        "ba4f77f19517610a707c374e99322d7750c30fc4ae7ff5527888595a1e65d36d",
        99_567_659,
    ),
    "5shot": HubFile(
        ROUTERBENCH_REPO,
        "routerbench_5shot.pkl",
        ROUTERBENCH_REVISION,
        "fbd7d3d16fba2759a18fa0ad44409d3e0e92ba80d03d90827eed1a6d084c9ffe",
        None,
    ),
}

SPROUT_SPLIT_FILES: dict[str, str] = {
    "train": "data/train-00000-of-00001.parquet",
    "val": "data/validation-00000-of-00001.parquet",
    "test": "data/test-00000-of-00001.parquet",
}
# No commit or checksum of the SPROUT parquet files could be confirmed from here: they are
# downloaded from the default branch and their sha256 is recorded in the benchmark's metadata.
# Parquet is data, not code, so an unpinned parquet file is read (a pickle never is).
SPROUT_FILES: dict[str, dict[str, HubFile]] = {
    variant: {split: HubFile(f"CARROT-LLM-Routing/{variant}", name, None, None) for split, name in SPROUT_SPLIT_FILES.items()}
    for variant in ("SPROUT", "SPROUT-o3mini")
}


class DataNotFoundError(FileNotFoundError):
    """No copy of a benchmark file was found, and none could be downloaded."""


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def first_existing(paths: Iterable[Path]) -> Path | None:
    """Return the first of ``paths`` that is a file, or ``None``."""
    for path in paths:
        if path.is_file():
            return path
    return None


def _get_hf_hub_download() -> Callable[..., Any]:
    """Return ``huggingface_hub.hf_hub_download`` (tests replace this function)."""
    from huggingface_hub import hf_hub_download  # optional dependency: the [hub] extra

    return hf_hub_download


def hub_available() -> bool:
    """Whether ``huggingface_hub`` can be imported."""
    try:
        _get_hf_hub_download()
    except ImportError:
        return False
    return True


def fetch_from_hub(file: HubFile, local_dir: Path) -> Path:
    """Download ``file`` at its pinned revision into ``local_dir`` and check its sha256.

    Args:
        file: The pinned file.
        local_dir: Folder the file lands in (as ``local_dir / file.filename``).

    Returns:
        The path of the downloaded file.

    Raises:
        ImportError: If ``huggingface_hub`` is not installed.
        ValueError: If the downloaded bytes do not match the pinned sha256 (the file is deleted).
        Exception: Whatever ``hf_hub_download`` raises when the hub cannot be reached.
    """
    download = _get_hf_hub_download()
    local_dir.mkdir(parents=True, exist_ok=True)
    path = Path(
        download(
            repo_id=file.repo_id,
            filename=file.filename,
            repo_type="dataset",
            revision=file.revision,
            local_dir=str(local_dir),
        )
    )
    if file.sha256 is not None:
        got = sha256_file(path)
        if got != file.sha256:
            path.unlink(missing_ok=True)
            raise ValueError(
                f"Checksum mismatch for {file.repo_id}/{file.filename} (revision {file.revision}) downloaded to {path}: "
                f"sha256 {got}, expected {file.sha256}. The file was deleted; it is not the pinned release."
            )
    return path


def hub_fallback(files: Iterable[HubFile], local_dir: Path) -> tuple[list[Path] | None, str]:
    """Try to download ``files``; on any failure except a checksum mismatch return ``(None, reason)``.

    Raises:
        ValueError: On a checksum mismatch (never masked as "not found").
    """
    try:
        return [fetch_from_hub(file, local_dir) for file in files], ""
    except ImportError:
        return None, "huggingface_hub is not installed (pip install 'proteus-routing-gym[hub]')"
    except ValueError:
        raise
    except Exception as exc:  # network down, offline mode, unknown revision, ...
        return None, f"download from the Hugging Face hub failed: {type(exc).__name__}: {exc}"
