"""Vector retrieval: nearest neighbours within a group, saved and versioned with a model.

Used for evidence (the nearest verified reference items of a listing's photos) and, later, for
discovery (similar items). FAISS HNSW for groups large enough to need it, exact search below;
the choice and its measurements: ``docs/decisions/0005-faiss-for-retrieval.md``.

>>> index = VectorIndex(dim=128)                                        # doctest: +SKIP
>>> index.add(ids, embeddings, groups=brand_ids)                        # doctest: +SKIP
>>> hits = index.search(query_embeddings, k=10, groups=query_brands)    # doctest: +SKIP
"""

from couturier.retrieval._index import SearchResult, VectorIndex

__all__ = ["SearchResult", "VectorIndex"]
