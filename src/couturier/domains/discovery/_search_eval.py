"""Judged queries from the catalog's own attributes, and nDCG@k of each side of search.

No click log exists for the catalog, so the judgements come from its attributes. A query is
built from one sampled product: always its ``articleType`` (a shopper names what they want),
plus one or two of ``gender``, ``baseColour``, ``usage`` and the brand (:func:`~._catalog.brands`)
-- two extras with probability 0.6 -- phrased the way a shopper types: ``black men's sports
shoes``, ``Puma blue tshirt``, ``ladies kurta for ethnic wear``. Every product that shares all
the attributes the query names is relevant; the rest are not (binary relevance, so nDCG's gain
is 1 for a relevant product and the ideal ranking puts ``min(k, #relevant)`` of them first).

About half the queries (``synonym_rate``) name the product type or the gender with a word the
catalog does not use (``sneakers`` for Casual Shoes, ``tee`` for Tshirts, ``ladies`` for
Women, ``shades`` for Sunglasses). Shoppers do this, and a lexical index cannot match a word no
title contains, so BM25 alone cannot win everything; the dense side, which has seen such words
used alike, can. The other half use the catalog's own words, where BM25's exact matching is
hard to beat. Colours are the catalog's, lower-cased (``navy blue``).

Two query sets are drawn, each from its own seed: the **tuning** set (seed 1) chose the fusion's
settings (RRF ``k``, weights, candidates, which text is indexed); the **evaluation** set
(seed 0, 800 queries by default) only measures. Both sample products uniformly, so frequent
types (T-shirts, shirts, shoes) dominate as they would in traffic.

>>> styles = load_styles("styles.csv")                            # doctest: +SKIP
>>> queries = build_queries(styles, n=800, seed=EVALUATION_SEED)   # doctest: +SKIP
>>> evaluate(index, queries)                                       # doctest: +SKIP
{'hybrid_ndcg_at_10': 0.8..., 'bm25_ndcg_at_10': 0.7..., 'dense_ndcg_at_10': 0.7..., 'queries': 800}

Reproduce the numbers with ``python -m couturier.domains.discovery._search_eval styles.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from couturier.domains.discovery._catalog import brands
from couturier.domains.discovery._ranking_metrics import ndcg_at_k

__all__ = [
    "EVALUATION_SEED",
    "TUNING_SEED",
    "TYPE_SYNONYMS",
    "Query",
    "build_queries",
    "evaluate",
]

EVALUATION_SEED = 0
TUNING_SEED = 1

#: Words shoppers use for a product type that the catalog's titles rarely or never use.
TYPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Tshirts": ("tee", "tees", "t shirt"),
    "Shirts": ("button down shirt", "button-up"),
    "Casual Shoes": ("sneakers", "loafers"),
    "Sports Shoes": ("running shoes", "trainers", "athletic shoes"),
    "Formal Shoes": ("dress shoes", "oxfords"),
    "Watches": ("wristwatch", "timepiece"),
    "Handbags": ("purse", "tote bag"),
    "Heels": ("high heels", "stilettos", "pumps"),
    "Flip Flops": ("slippers", "thongs"),
    "Sandals": ("open toe sandals",),
    "Sunglasses": ("shades", "eyewear"),
    "Briefs": ("underwear", "undies"),
    "Trousers": ("pants", "slacks"),
    "Jeans": ("denims", "denim pants"),
    "Tops": ("blouse",),
    "Dresses": ("frock", "gown"),
    "Kurtas": ("kurta",),
    "Sarees": ("sari",),
    "Wallets": ("billfold", "purse"),
    "Belts": ("waist belt",),
    "Backpacks": ("rucksack", "school bag"),
    "Socks": ("ankle socks", "stockings"),
    "Perfume and Body Mist": ("fragrance", "scent"),
    "Shorts": ("half pants", "bermudas"),
    "Jackets": ("coat", "windcheater"),
    "Sweatshirts": ("hoodie", "pullover"),
    "Bra": ("brassiere", "lingerie"),
    "Track Pants": ("joggers", "sweatpants"),
    "Flats": ("ballet flats", "ballerinas"),
    "Earrings": ("studs", "ear rings"),
    "Deodorant": ("deo", "body spray"),
    "Lipstick": ("lip color",),
    "Caps": ("hat", "baseball cap"),
    "Clutches": ("evening bag",),
    "Innerwear Vests": ("undershirt", "singlet"),
    "Sweaters": ("jumper", "cardigan"),
}
GENDER_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # gender -> (the catalog's words, a shopper's other words)
    "Men": (("men's", "men", "for men"), ("gents", "male", "guys")),
    "Women": (("women's", "women", "for women"), ("ladies", "female", "womens")),
    "Boys": (("boys", "boys'"), ("kids boy", "son")),
    "Girls": (("girls", "girls'"), ("kids girl", "daughter")),
    "Unisex": (("unisex",), ("for everyone", "for anyone")),
}
_EXTRAS = ("gender", "baseColour", "usage", "brand")


@dataclass(frozen=True)
class Query:
    """A judged query: its text, the attributes it names, and the ids of relevant products."""

    text: str
    attributes: dict[str, str]
    relevant: frozenset[Any]
    synonym: bool


def _type_words(article: str) -> str:
    # the catalog's own word for the type, singular where a shopper would say it so
    words = {"Tshirts": "tshirt", "Shirts": "shirt", "Sarees": "saree", "Kurtas": "kurtas"}
    return words.get(article, article.lower())


def _phrase(attrs: dict[str, str], rng: np.random.Generator, synonym: bool) -> str:
    article = attrs["articleType"]
    if synonym and article in TYPE_SYNONYMS:
        kind = str(rng.choice(TYPE_SYNONYMS[article]))
    else:
        kind = _type_words(article)
    words: list[str] = []
    if "brand" in attrs:
        words.append(attrs["brand"])
    if "baseColour" in attrs:
        words.append(attrs["baseColour"].lower())
    gender = ""
    if "gender" in attrs and attrs["gender"] in GENDER_WORDS:
        own, other = GENDER_WORDS[attrs["gender"]]
        gender = str(rng.choice(other if synonym else own))
    if gender and not gender.startswith("for ") and rng.random() < 0.6:
        words.append(gender)
        gender = ""
    words.append(kind)
    if gender:
        words.append(gender if gender.startswith("for ") else f"for {gender}")
    if "usage" in attrs:
        words.append(f"for {attrs['usage'].lower()} wear")
    return " ".join(words)


def build_queries(
    styles: pd.DataFrame, *, n: int = 800, seed: int = EVALUATION_SEED, synonym_rate: float = 0.5
) -> list[Query]:
    """``n`` judged queries drawn from ``styles`` (the frame of :func:`~._catalog.load_styles`).

    >>> queries = build_queries(load_styles("styles.csv"), n=5, seed=0)   # doctest: +SKIP
    >>> queries[0].text, len(queries[0].relevant)                         # doctest: +SKIP
    ('ladies heels for casual wear', 912)
    """
    rng = np.random.default_rng(seed)
    table = styles[["id", "articleType", "gender", "baseColour", "usage"]].copy()
    table["brand"] = brands(styles["productDisplayName"])
    table = table.fillna("")
    queries: list[Query] = []
    seen: set[str] = set()
    # usage "NA" and empty attributes say nothing a shopper would type: never query them
    while len(queries) < n:
        row = table.iloc[int(rng.integers(len(table)))]
        usable = [a for a in _EXTRAS if row[a] and row[a] != "NA"]
        count = min(len(usable), 2 if rng.random() < 0.6 else 1)
        extras = [str(a) for a in rng.choice(usable, size=count, replace=False)] if usable else []
        attrs = {a: str(row[a]) for a in ["articleType", *sorted(extras)]}
        synonym = bool(rng.random() < synonym_rate)
        text = _phrase(attrs, rng, synonym)
        if text in seen:
            continue
        seen.add(text)
        match = np.ones(len(table), dtype=bool)
        for a, v in attrs.items():
            match &= (table[a] == v).to_numpy()
        queries.append(Query(text, attrs, frozenset(table["id"][match].tolist()), synonym))
    return queries


class _Searcher(Protocol):
    def search(self, query: str, k: int = ..., filters: Any = ..., mode: Any = ...) -> Any: ...


def evaluate(search: _Searcher, queries: Sequence[Query], k: int = 10) -> dict[str, float]:
    """Mean nDCG@k of hybrid search and of each side alone over ``queries``.

    Also reports the two halves (queries in the catalog's words, and with a synonym) so a
    change that helps one at the other's cost shows.

    >>> evaluate(index, queries)["hybrid_ndcg_at_10"]   # doctest: +SKIP
    0.8...
    """
    scores: dict[str, list[float]] = {m: [] for m in ("hybrid", "bm25", "dense")}
    synonym: dict[str, list[float]] = {m: [] for m in scores}
    for q in queries:
        for mode, got in scores.items():
            hits = search.search(q.text, k=k, mode=mode)
            value = ndcg_at_k([[h[0] for h in hits]], [q.relevant], k)
            got.append(value)
            if q.synonym:
                synonym[mode].append(value)
    out: dict[str, float] = {f"{m}_ndcg_at_{k}": float(np.mean(v)) for m, v in scores.items()}
    for m, v in synonym.items():
        out[f"{m}_ndcg_at_{k}_synonym_queries"] = float(np.mean(v)) if v else float("nan")
    out["queries"] = len(queries)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m couturier.domains.discovery._search_eval STYLES_CSV [N] [SEED]``."""
    import json
    import os
    import sys
    from pathlib import Path

    from couturier.domains.discovery._catalog import catalog_documents, load_styles
    from couturier.domains.discovery._encoder import TextEncoder, export_onnx, tokenizer_json
    from couturier.domains.discovery._search import HybridSearch, SearchConfig

    args = list(sys.argv[1:] if argv is None else argv)
    n = int(args[1]) if len(args) > 1 else 800
    seed = int(args[2]) if len(args) > 2 else EVALUATION_SEED
    styles = load_styles(args[0])
    threads = int(os.environ.get("COUTURIER_ENCODER_THREADS", "2"))
    encoder = TextEncoder.from_onnx(export_onnx(), tokenizer_json(), intra_op_threads=threads)
    index = HybridSearch(encoder, SearchConfig(price=None))
    docs = catalog_documents(styles)
    cache = (
        Path(os.environ.get("COUTURIER_EMBEDDINGS", ""))
        if "COUTURIER_EMBEDDINGS" in os.environ
        else None
    )
    embeddings = np.load(cache) if cache and cache.is_file() else None
    index.fit(docs, embeddings=embeddings)
    if cache and embeddings is None:
        np.save(cache, index.document_embeddings())
    result = evaluate(index, build_queries(styles, n=n, seed=seed))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
