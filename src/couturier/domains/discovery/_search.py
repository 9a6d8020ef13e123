"""Hybrid search: BM25 (``bm25s``) and dense text embeddings, fused by reciprocal rank fusion.

Each side ranks the documents that pass the filters and keeps its top ``candidates``:

* **lexical**: BM25 over each document's text (the title repeated ``title`` times, so a word of
  the title weighs more than one of the other text), lower-cased words of two or more
  characters, English stop words removed, no stemmer. A document is a lexical candidate only if
  it shares a word with the query.
* **dense**: the query's unit-norm embedding against every document's, exact inner product (a
  float32 matrix product over the filtered rows: 44k x 384 takes a few milliseconds, so an
  approximate index would buy nothing here).

Reciprocal rank fusion then scores a document ``sum(weight[side] / (rrf_k + rank[side]))`` over
the sides that found it (ranks from 1). Filters (categorical columns, any of a list of values,
case-insensitive; a ``(low, high)`` price range, either end open) apply before ranking on both
sides; filters that match nothing give ``[]``.

>>> index = HybridSearch(encoder).fit(documents)                        # doctest: +SKIP
>>> index.search("black men's running shoes", k=3, filters={"gender": "Men"})  # doctest: +SKIP
[Hit(doc_id=13374, score=0.0328, sources=('bm25', 'dense')), ...]

A registry stores an index as files (:meth:`HybridSearch.to_artifacts`) beside the encoder's
ONNX model; :meth:`HybridSearch.from_artifacts` reads them back without pickles.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np
import pandas as pd

from couturier.errors import InvalidInputError, InvalidParameterError
from couturier.extras import require

__all__ = [
    "MAX_QUERY_CHARS",
    "Hit",
    "HybridSearch",
    "Mode",
    "SearchConfig",
    "reciprocal_rank_fusion",
    "validate_query",
]

MAX_QUERY_CHARS = 256
Mode = Literal["hybrid", "bm25", "dense"]
_MODES = ("hybrid", "bm25", "dense")
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # bm25s's default pattern: words of 2+ characters
FilterValue = str | Sequence[str] | tuple[float | None, float | None]


class Encoder(Protocol):
    """What the index needs of a text encoder (:class:`~._encoder.TextEncoder` is one)."""

    def encode(self, texts: list[str], batch_size: int = ...) -> np.ndarray: ...


class Hit(NamedTuple):
    """One result: the document's id, its score, and the sides that found it."""

    doc_id: Any
    score: float
    sources: tuple[str, ...]


@dataclass(frozen=True)
class SearchConfig:
    """What is indexed and how the two sides fuse.

    ``text``: the columns of the lexical text, each repeated ``weight`` times (a repeated title
    counts its words more often, so they outweigh those of longer descriptive text).
    ``embed``: the columns joined (``. ``) into the text the encoder embeds. ``categorical``:
    the columns a filter may name. ``price``: the numeric column of range filters, or ``None``.
    """

    id: str = "id"
    text: Mapping[str, int] = field(default_factory=lambda: {"title": 1, "text": 1})
    embed: tuple[str, ...] = ("title",)
    categorical: tuple[str, ...] = ("house", "category", "colour", "gender")
    price: str | None = "price"
    rrf_k: float = 60.0
    # tuned on the tuning queries (see _search_eval), nDCG@10 0.694 -> 0.726: the dense side at
    # 1.5x (2x was worse), 200 candidates a side, the title once (twice lost 0.011); rrf_k 20 lost
    candidates: int = 200
    weights: Mapping[str, float] = field(default_factory=lambda: {"bm25": 1.0, "dense": 1.5})

    def __post_init__(self) -> None:
        if self.rrf_k < 0 or self.candidates < 1:
            raise InvalidParameterError(
                f"rrf_k={self.rrf_k} and candidates={self.candidates}: rrf_k must be >= 0 and "
                "candidates >= 1; the usual values are 60 and 100",
                field="config",
            )
        if set(self.weights) != {"bm25", "dense"} or min(self.weights.values()) < 0:
            raise InvalidParameterError(
                f"weights {dict(self.weights)} must give 'bm25' and 'dense' a weight >= 0",
                field="weights",
            )


def validate_query(query: str) -> str:
    """The query stripped of surrounding space, or :class:`InvalidInputError` naming the rule.

    >>> validate_query("  red dress ")
    'red dress'
    >>> try:
    ...     validate_query("   ")
    ... except InvalidInputError as err:
    ...     print(err.field, "|", err.message[:39])
    query | the query is empty or only white space;
    """
    if not isinstance(query, str):
        raise InvalidInputError(
            f"the query must be a string, not {type(query).__name__}; send text", field="query"
        )
    text = query.strip()
    if not text:
        raise InvalidInputError(
            "the query is empty or only white space; send at least one word", field="query"
        )
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInputError(
            f"the query has {len(text)} characters; the limit is {MAX_QUERY_CHARS}; "
            "shorten it to the words that matter",
            field="query",
        )
    bad = next((c for c in text if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise InvalidInputError(
            f"the query contains the control character {bad!r}; queries are one line of "
            "printable text: remove it",
            field="query",
        )
    return text


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[int]], *, k: float = 60.0, weights: Mapping[str, float]
) -> list[tuple[int, float, tuple[str, ...]]]:
    """Fuse ranked lists: ``score(d) = sum(weights[s] / (k + rank_s(d)))``, ranks from 1.

    Ties keep the order of first appearance (side by side, rank by rank), so results are stable.

    >>> fused = reciprocal_rank_fusion(
    ...     {"bm25": [7, 3], "dense": [3, 9]}, k=1, weights={"bm25": 1, "dense": 1}
    ... )
    >>> [(d, round(s, 3), src) for d, s, src in fused]
    [(3, 0.833, ('bm25', 'dense')), (7, 0.5, ('bm25',)), (9, 0.333, ('dense',))]
    """
    scores: dict[int, float] = {}
    sources: dict[int, list[str]] = {}
    for side, ranked in rankings.items():
        w = float(weights.get(side, 1.0))
        for rank, doc in enumerate(ranked, start=1):
            scores[doc] = scores.get(doc, 0.0) + w / (k + rank)
            sources.setdefault(doc, []).append(side)
    order = sorted(scores, key=lambda d: -scores[d])  # sorted() is stable: ties keep first-seen
    return [(d, scores[d], tuple(sources[d])) for d in order]


def _top(rows: np.ndarray, scores: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` best (row, score) pairs, best first; ties by row for a stable order."""
    if len(rows) > m:
        keep = np.argpartition(-scores, m - 1)[:m]
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))
    return rows[order], scores[order]


class HybridSearch:
    """A hybrid search index over a DataFrame of documents.

    ``fit(documents)`` needs the columns named in :class:`SearchConfig` (by default ``id``,
    ``title``, ``text``, ``house``, ``category``, ``colour``, ``gender``, ``price``).

    >>> index = HybridSearch(encoder, SearchConfig(price=None)).fit(docs)   # doctest: +SKIP
    >>> index.search("Puma blue tshirt", k=2)                              # doctest: +SKIP
    [Hit(doc_id=1855, score=0.0325, sources=('bm25', 'dense')), Hit(...)]
    >>> cheap = {"house": ["Nike", "Puma"], "price": (None, 50)}
    >>> index.search("red dress", filters=cheap)     # doctest: +SKIP
    []
    """

    def __init__(self, encoder: Encoder, config: SearchConfig | None = None) -> None:
        self.encoder = encoder
        self.config = config or SearchConfig()

    # -- building ------------------------------------------------------------------------------

    def fit(self, documents: pd.DataFrame, embeddings: np.ndarray | None = None) -> HybridSearch:
        """Index ``documents``; ``embeddings`` (their dense vectors, in order) skips encoding."""
        cfg = self.config
        needed = [cfg.id, *cfg.text, *cfg.embed, *cfg.categorical]
        needed += [cfg.price] if cfg.price else []
        missing = sorted(set(needed) - set(documents.columns))
        if missing:
            raise InvalidInputError(
                f"the documents lack the columns {missing}; add them or change SearchConfig",
                field="documents",
            )
        if documents[cfg.id].duplicated().any():
            raise InvalidInputError(
                f"the documents' {cfg.id!r} column has duplicates; ids must be unique",
                field=cfg.id,
            )
        self.ids_ = documents[cfg.id].tolist()
        self.categories_: dict[str, dict[str, int]] = {}
        self.codes_: dict[str, np.ndarray] = {}
        for column in cfg.categorical:
            values = documents[column].fillna("").astype(str).str.lower()
            codes, uniques = pd.factorize(values, sort=True)
            self.categories_[column] = {v: i for i, v in enumerate(uniques)}
            self.codes_[column] = codes.astype(np.int32)
        self.price_ = (
            documents[cfg.price].to_numpy(dtype=np.float64, na_value=np.nan) if cfg.price else None
        )
        self.bm25_ = self._index_lexical(documents)
        # documents often share their embedded text (a marketplace lists one product many
        # times): each distinct text is encoded and scored once, then mapped to its documents
        codes, texts = pd.factorize(pd.Series(self.dense_texts(documents)))
        if embeddings is None:
            unique = self.encoder.encode(list(texts), batch_size=128)
        elif embeddings.shape != (len(documents), embeddings.shape[1]):
            raise InvalidInputError(
                f"embeddings have shape {embeddings.shape}; one row per document is needed "
                f"({len(documents)})",
                field="embeddings",
            )
        else:
            first = np.unique(codes, return_index=True)[1]
            unique = embeddings[first]
        self.embeddings_ = np.ascontiguousarray(unique, dtype=np.float32)
        self.text_codes_ = codes.astype(np.int32)
        return self

    def document_embeddings(self) -> np.ndarray:
        """Each document's dense vector, in document order."""
        vectors: np.ndarray = self.embeddings_[self.text_codes_]
        return vectors

    def lexical_texts(self, documents: pd.DataFrame) -> list[str]:
        """The text BM25 indexes for each document (the weighted columns, concatenated)."""
        parts = [
            (documents[c].fillna("").astype(str) + " ") * w for c, w in self.config.text.items()
        ]
        joined = parts[0] if parts else pd.Series([""] * len(documents))
        for p in parts[1:]:
            joined = joined + p
        return joined.str.strip().tolist()

    def dense_texts(self, documents: pd.DataFrame) -> list[str]:
        """The text the encoder embeds for each document."""
        cols = [documents[c].fillna("").astype(str) for c in self.config.embed]
        joined = cols[0]
        for c in cols[1:]:
            joined = joined + ". " + c
        return joined.tolist()

    def _index_lexical(self, documents: pd.DataFrame) -> Any:
        bm25s = require("bm25s", extra="discovery", purpose="lexical search")
        tokens = [self._tokens(t) for t in self.lexical_texts(documents)]
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return retriever

    @staticmethod
    def _tokens(text: str) -> list[str]:
        return [t for t in _TOKEN.findall(text.lower()) if t not in _stopwords()]

    # -- searching -----------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        filters: Mapping[str, FilterValue] | None = None,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """The ``k`` best documents for ``query`` among those passing ``filters``.

        ``mode`` ``"bm25"`` or ``"dense"`` ranks by one side alone (scores: BM25, cosine);
        ``"hybrid"`` fuses both (scores: reciprocal rank fusion).

        >>> index.search("navy formal shirt", k=5, filters={"gender": "Men"})  # doctest: +SKIP
        """
        text = validate_query(query)
        if k < 1 or mode not in _MODES:
            raise InvalidParameterError(
                f"k={k}, mode={mode!r}: k must be >= 1 and mode one of {list(_MODES)}",
                field="k" if k < 1 else "mode",
            )
        mask = self._mask(filters or {})
        if mask is not None and not mask.any():
            return []
        m = max(k, self.config.candidates) if mode == "hybrid" else k
        sides: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if mode in ("hybrid", "bm25"):
            sides["bm25"] = self._lexical(text, mask, m)
        if mode in ("hybrid", "dense"):
            sides["dense"] = self._dense(text, mask, m)
        if mode != "hybrid":
            rows, scores = sides[mode]
            return [Hit(self.ids_[r], float(s), (mode,)) for r, s in zip(rows, scores, strict=True)]
        fused = reciprocal_rank_fusion(
            {side: rows.tolist() for side, (rows, _) in sides.items()},
            k=self.config.rrf_k,
            weights=self.config.weights,
        )
        return [Hit(self.ids_[r], s, src) for r, s, src in fused[:k]]

    def _lexical(self, text: str, mask: np.ndarray | None, m: int) -> tuple[np.ndarray, np.ndarray]:
        ids = self.bm25_.get_tokens_ids(self._tokens(text))
        if not ids:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        scores = np.asarray(self.bm25_.get_scores_from_ids(ids))
        found = scores > 0  # a document sharing no word with the query is not a lexical match
        if mask is not None:
            found &= mask
        rows = np.flatnonzero(found)
        return _top(rows, scores[rows], m)

    def _dense(self, text: str, mask: np.ndarray | None, m: int) -> tuple[np.ndarray, np.ndarray]:
        q = self.encoder.encode([text])[0]
        # score every row, then keep the filtered ones: gathering the filtered rows of the
        # matrix first copies megabytes and measured slower (13 ms against 8 at p50)
        scores = (self.embeddings_ @ q)[self.text_codes_]
        rows = np.arange(len(self.ids_)) if mask is None else np.flatnonzero(mask)
        return _top(rows, scores[rows], m)

    def _mask(self, filters: Mapping[str, FilterValue]) -> np.ndarray | None:
        mask: np.ndarray | None = None
        for name, value in filters.items():
            if name in self.categories_:
                part = self._categorical_mask(name, value)
            elif name == self.config.price and self.price_ is not None:
                part = self._price_mask(value)
            else:
                known = [*self.categories_, *([self.config.price] if self.config.price else [])]
                raise InvalidParameterError(
                    f"unknown filter {name!r}; the filters are {known}", field="filters"
                )
            mask = part if mask is None else mask & part
        return mask

    def _categorical_mask(self, name: str, value: FilterValue) -> np.ndarray:
        values = [value] if isinstance(value, str) else list(value)
        if not all(isinstance(v, str) for v in values):
            raise InvalidParameterError(
                f"filter {name!r}={value!r}: give a string or a list of strings", field=name
            )
        vocab = self.categories_[name]
        wanted = [vocab[v.lower()] for v in values if isinstance(v, str) and v.lower() in vocab]
        return np.isin(self.codes_[name], np.asarray(wanted, dtype=np.int32))

    def _price_mask(self, value: FilterValue) -> np.ndarray:
        price = self.price_ if self.price_ is not None else np.empty(0)
        ok = isinstance(value, tuple | list) and len(value) == 2
        ok = ok and all(v is None or isinstance(v, int | float) for v in value)
        if not ok:
            raise InvalidParameterError(
                f"filter {self.config.price!r}={value!r}: give a (low, high) pair of numbers, "
                "None for an open end, e.g. (None, 500)",
                field=str(self.config.price),
            )
        low, high = (None if v is None else float(v) for v in value)
        mask = ~np.isnan(price)  # an unpriced item never passes a price filter
        if low is not None:
            mask &= price >= low
        if high is not None:
            mask &= price <= high
        return mask

    # -- artifacts -----------------------------------------------------------------------------

    def to_artifacts(self) -> dict[str, bytes]:
        """The fitted index as named files: JSON, ``.npy`` and bm25s's own files (no pickles).

        >>> files = index.to_artifacts()            # doctest: +SKIP
        >>> sorted(files)[:3]                        # doctest: +SKIP
        ['bm25/data.csc.index.npy', 'bm25/indices.csc.index.npy', 'bm25/indptr.csc.index.npy']
        """
        cfg = asdict(self.config)
        cfg["text"] = dict(self.config.text)
        cfg["weights"] = dict(self.config.weights)
        meta = {"config": cfg, "ids": self.ids_, "categories": self.categories_}
        files = {"index.json": json.dumps(meta).encode(), "embeddings.npy": _npy(self.embeddings_)}
        files["text_codes.npy"] = _npy(self.text_codes_)
        for column, codes in self.codes_.items():
            files[f"filter.{column}.npy"] = _npy(codes)
        if self.price_ is not None:
            files["price.npy"] = _npy(self.price_)
        with tempfile.TemporaryDirectory() as tmp:
            self.bm25_.save(tmp)
            for path in sorted(Path(tmp).iterdir()):
                files[f"bm25/{path.name}"] = path.read_bytes()
        return files

    @classmethod
    def from_artifacts(cls, artifacts: Mapping[str, bytes], encoder: Encoder) -> HybridSearch:
        """The index :meth:`to_artifacts` wrote, searching with ``encoder``."""
        for name in ("index.json", "embeddings.npy", "text_codes.npy"):
            if name not in artifacts:
                raise InvalidInputError(
                    f"the search artifacts lack {name!r}; pass every file to_artifacts wrote",
                    field="artifacts",
                )
        meta = json.loads(artifacts["index.json"])
        cfg = meta["config"]
        cfg["embed"] = tuple(cfg["embed"])
        cfg["categorical"] = tuple(cfg["categorical"])
        index = cls(encoder, SearchConfig(**cfg))
        index.ids_ = list(meta["ids"])
        index.categories_ = {c: dict(v) for c, v in meta["categories"].items()}
        index.codes_ = {c: _load(artifacts[f"filter.{c}.npy"]) for c in index.categories_}
        index.price_ = _load(artifacts["price.npy"]) if "price.npy" in artifacts else None
        index.embeddings_ = _load(artifacts["embeddings.npy"])
        index.text_codes_ = _load(artifacts["text_codes.npy"])
        bm25s = require("bm25s", extra="discovery", purpose="lexical search")
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in artifacts.items():
                if name.startswith("bm25/"):
                    (Path(tmp) / Path(name).name).write_bytes(data)
            index.bm25_ = bm25s.BM25.load(tmp, allow_pickle=False)
        return index


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _load(data: bytes) -> np.ndarray:
    return np.asarray(np.load(io.BytesIO(data), allow_pickle=False))


_STOPWORDS: frozenset[str] = frozenset()


def _stopwords() -> frozenset[str]:
    global _STOPWORDS  # noqa: PLW0603 - loaded once, on first use, from bm25s
    if not _STOPWORDS:
        words = require("bm25s.stopwords", extra="discovery", purpose="lexical search")
        _STOPWORDS = frozenset(words.STOPWORDS_EN)
    return _STOPWORDS
