"""The authentication graph's parts: photo checks, the image model, references, fusion."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import onnx
import pytest
from PIL import Image

from couturier.domains.authentication import fusion, image_model
from couturier.domains.authentication.evidence import ReferenceSet
from couturier.domains.authentication.image_model import ImageTrainConfig
from couturier.domains.authentication.photos import PhotoLimits, decode_photo, decode_photos
from couturier.errors import InvalidInputError
from couturier.registry._packaging import check_parity, session


def _encode(array: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size and carries almost no pixels: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


# ---- photos --------------------------------------------------------------------------------
def test_a_photo_of_another_size_is_centre_cropped_and_resized() -> None:
    wide = np.zeros((120, 200, 3), np.uint8)
    wide[:, 40:160] = 200  # the centre square is bright, the sides dark
    out = decode_photo(_encode(wide, "PNG"))
    assert out.shape == (96, 96, 3) and out.dtype == np.uint8
    assert out.mean() > 190  # the dark sides were cropped away


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"", "is empty"),
        (b"GIF89a not really", "not a readable image"),
        (b"x" * 100, "not a readable image"),
        (_png_header_only(6_000, 6_000), "pixels; the limit"),
        (_png_header_only(30_000, 30_000), "pixels than a decoder should expand"),
        (_encode(np.zeros((96, 96, 3), np.uint8))[:300], "truncated or corrupt"),
        (_encode(np.zeros((16, 16, 3), np.uint8)), "at least 32"),
        (_encode(np.zeros((40, 40, 3), np.uint8), "GIF"), "accepted formats"),
    ],
)
def test_bad_photos_are_refused_with_the_field_and_the_rule(data: bytes, rule: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        decode_photos([_encode(np.zeros((96, 96, 3), np.uint8)), data])
    assert err.value.field == "photos[1]"
    assert rule in err.value.message


def test_a_photo_over_the_byte_limit_is_refused_before_decoding() -> None:
    data = _encode(np.zeros((96, 96, 3), np.uint8))
    with pytest.raises(InvalidInputError, match="the limit is 100"):
        decode_photo(data, limits=PhotoLimits(max_bytes=100))
    with pytest.raises(InvalidInputError, match="a photo is the bytes"):
        decode_photo("not bytes")  # type: ignore[arg-type]


# ---- image model ---------------------------------------------------------------------------
def test_context_codes_refuse_unknown_views_and_brands() -> None:
    assert image_model.context_codes([0, 2], ["front", "label"]).tolist() == [0, 11]
    with pytest.raises(InvalidInputError, match="not a photo view") as err:
        image_model.context_codes([0], ["back"])
    assert err.value.field == "view"
    with pytest.raises(InvalidInputError, match="outside") as err:
        image_model.context_codes([99], ["front"])
    assert err.value.field == "brand_id"


def _toy(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Photos whose label is a colour shift: learnable in an epoch or two."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.float32)
    base = rng.integers(60, 200, size=(n, 1, 1, 3))
    images = np.clip(base + rng.normal(0, 8, (n, 96, 96, 3)) + 40 * y[:, None, None, None], 0, 255)
    contexts = rng.integers(0, 8, n)
    return images.astype(np.uint8), contexts, y, np.arange(n)


SMALL = ImageTrainConfig(
    epochs=3, batch_size=16, max_photos_per_epoch=64, widths=(8, 8, 8, 8, 8), seed=3
)


def test_training_keeps_the_best_epoch_and_stops_when_it_stops_improving() -> None:
    images, contexts, y, ids = _toy()
    valid = ids >= 64
    rng = np.random.default_rng(1)
    noise = rng.permutation(y)  # labels unrelated to pixels: nothing to learn
    cfg = ImageTrainConfig(
        epochs=10, patience=1, batch_size=16, max_photos_per_epoch=32, widths=(8,) * 5, seed=3
    )
    stopped = image_model.train_image_model(images, contexts, noise, ids, valid, cfg)
    assert len(stopped.history) < 10  # patience ran out
    best = max(h["valid_listing_pr_auc"] for h in stopped.history)
    assert stopped.history[stopped.best_epoch]["valid_listing_pr_auc"] == best


def test_the_image_model_module_names_the_whole_model() -> None:
    """The network and its ONNX side live in modules of their own; callers import one name."""
    for name in image_model.__all__:
        assert hasattr(image_model, name), name
    net = image_model._build(SMALL)  # benchmarks build an untrained network this way
    assert net.out.in_features == image_model.EMBEDDING_DIM
    assert net.film.num_embeddings == image_model.CONTEXTS


def test_validation_is_capped_keeping_every_counterfeit_photo() -> None:
    from couturier.domains.authentication._recipe_training import cap_validation

    listing = np.repeat(np.arange(40), 3)  # 40 listings of 3 photos
    label = (listing < 4).astype(int)  # 4 counterfeit listings: 12 photos
    valid = np.ones(len(listing), bool)
    assert cap_validation(valid, label, listing, 500, seed=1) is valid  # under the cap
    capped = cap_validation(valid, label, listing, 30, seed=1)
    assert capped[label == 1].all()  # every counterfeit photo stays
    kept = np.unique(listing[capped & (label == 0)])
    assert len(kept) == (30 - 12) // 3  # whole authentic listings, as many as fit
    assert np.array_equal(capped, cap_validation(valid, label, listing, 30, seed=1))


def test_training_needs_both_classes_and_a_validation_set() -> None:
    images, contexts, _, ids = _toy(32)
    with pytest.raises(InvalidInputError, match="counterfeit and authentic"):
        image_model.train_image_model(images, contexts, np.zeros(32), ids, ids >= 16, SMALL)


def test_onnx_export_matches_torch_and_int8_stays_close() -> None:
    images, contexts, y, ids = _toy()
    trained = image_model.train_image_model(images, contexts, y, ids, ids >= 64, SMALL)
    fp32 = image_model.export_onnx(trained.net)
    int8 = image_model.quantize_int8(fp32, {"image": images[:32], "context": contexts[:32]})
    package = image_model.package(trained.net, fp32, int8, images[:8], contexts[:8], "fp32")
    report = check_parity(package)
    assert report.passed, report.detail
    sess, q = session(fp32), session(int8)
    feed = {"image": images, "context": contexts}
    logit, embedding = sess.run(["logit", "embedding"], feed)
    assert logit.shape == (len(images),) and embedding.shape == (len(images), 64)
    (q_logit,) = q.run(["logit"], feed)
    assert np.corrcoef(logit, q_logit)[0, 1] > 0.95
    # a different-sized batch runs too (dynamic batch axis)
    assert sess.run(["logit"], {"image": images[:3], "context": contexts[:3]})[0].shape == (3,)
    # what int8 quantizes: every convolution but the one over a single channel (the spectrum's
    # first), and the ReLUs with them (no float ReLU between a dequantize and a quantize)
    graph = onnx.load_from_string(int8).graph
    float_weights = {w.name for w in graph.initializer if w.data_type == onnx.TensorProto.FLOAT}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    float_convs = [n.name for n in convs if n.input[1] in float_weights]
    assert len(convs) == 8 and float_convs == ["/spectrum/spectrum.0/Conv"]
    made_by = {out: n.op_type for n in graph.node for out in n.output}
    assert not [
        n for n in graph.node if n.op_type == "Relu" and made_by[n.input[0]] == "DequantizeLinear"
    ]


# ---- references ----------------------------------------------------------------------------
def _references() -> ReferenceSet:
    rng = np.random.default_rng(0)
    fake_dir, real_dir = np.eye(8)[0], np.eye(8)[1]
    emb = np.vstack(
        [fake_dir + rng.normal(0, 0.05, (20, 8)), real_dir + rng.normal(0, 0.05, (20, 8))]
    )
    counterfeit = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    contexts = np.r_[np.zeros(10), np.ones(10), np.zeros(10), np.ones(10)].astype(int)
    return ReferenceSet.build(np.arange(100, 140), np.arange(40), emb, contexts, counterfeit)


def test_retrieval_scores_follow_the_neighbours_verdicts_within_the_context() -> None:
    refs = _references()
    queries = np.vstack([np.eye(8)[0], np.eye(8)[1], np.zeros(8)])
    found = refs.search(queries, np.array([0, 0, 0]), k=5)
    assert set(found.ids[0]) <= set(range(100, 110))  # fakes of context 0 only
    assert set(found.ids[1]) <= set(range(120, 130))
    assert (found.ids[2] == -1).all()  # a zero embedding has no direction: no neighbours
    scores = refs.photo_scores(found)
    assert scores[0] > 0.8
    assert scores[1] < 0.2
    assert scores[2] == pytest.approx(refs.base_rate)  # no evidence: the base rate
    evidence = refs.evidence(found, [0, 0], k=3)  # the same photo twice: no duplicates
    assert len(set(evidence.photo_id)) == 3 == len(evidence.photo_id)
    assert evidence.verdict == ["counterfeit"] * 3
    assert evidence.similarity == sorted(evidence.similarity, reverse=True)
    assert refs.recall_at_k(queries, [0, 0, 0], k=5) == 1.0


def test_references_round_trip_through_artifacts() -> None:
    refs = _references()
    again = ReferenceSet.from_artifacts(refs.to_artifacts())
    q = np.eye(8)[[0, 1]]
    a, b = refs.search(q, [1, 1]), again.search(q, [1, 1])
    assert (a.ids == b.ids).all()
    assert np.allclose(refs.photo_scores(a), again.photo_scores(b))


# ---- fusion --------------------------------------------------------------------------------
def test_stacking_aggregates_each_listings_photos() -> None:
    x = fusion.stack(
        np.array([7, 5]),
        np.array([0.5, 0.2]),
        photo_listing=np.array([5, 7, 7, 7]),
        photo_logit=np.array([1.0, -1.0, 2.0, 0.5]),
        photo_retrieval=np.array([0.1, 0.5, 0.2, 0.3]),
        # every point's fail logit is 10 * photo + point index; views: front, label, monogram,
        # hardware (the hardware photo shows stitching and hardware; the label photo stitching)
        photo_points=10.0 * np.arange(4)[:, None] + np.arange(len(image_model.POINTS)),
        photo_views=np.array([0, 3, 1, 2]),
    )
    assert x.shape == (2, len(fusion.INPUTS))
    listing7 = dict(zip(fusion.INPUTS, x[0], strict=True))
    assert listing7["listing_logit"] == pytest.approx(0.0)
    assert listing7["image_max_logit"] == 2.0
    assert listing7["image_mean_logit"] == pytest.approx(0.5)
    assert listing7["retrieval_max_logit"] == pytest.approx(0.0)  # logit(0.5)
    assert listing7["photos"] == 3
    assert x[1, 4] == 1
    k = {p: i for i, p in enumerate(image_model.POINTS)}
    # listing 7's photos: label (row 1), monogram (row 2), hardware (row 3)
    assert listing7["point_stitch_density"] == 30 + k["stitch_density"]  # hardware beats label
    assert listing7["point_monogram_spacing"] == 20 + k["monogram_spacing"]  # monogram only
    assert listing7["point_hardware"] == 30 + k["hardware"]
    listing5 = dict(zip(fusion.INPUTS, x[1], strict=True))  # one front photo
    assert listing5["point_canvas_colour"] == k["canvas_colour"]
    assert np.isnan(listing5["point_stitch_density"])  # a front photo shows no stitching
    assert np.isnan(listing5["point_logo_typeface"])


def test_the_fusion_model_is_calibrated_and_exports_exactly() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    y = (rng.random(n) < 0.05).astype(int)
    x = np.column_stack(
        [
            rng.normal(2.0 * y, 1.0),
            rng.normal(1.5 * y, 1.0),
            rng.normal(y, 1.0),
            rng.normal(0, 1, n),
            rng.integers(1, 5, n),
            *(rng.normal(y, 1.0) for _ in image_model.POINTS),
        ]
    ).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = np.nan  # a point no photo shows, and worse
    x[:, :5] = np.nan_to_num(x[:, :5])  # the photo inputs exist for every listing
    model = fusion.fit_fusion(x, y)
    oof = fusion.out_of_fold(x, y)
    assert abs(oof.mean() - y.mean()) < 0.01  # calibrated in the large
    package = fusion.package(model, x[:200], {"review": 0.1, "counterfeit": 0.9}, {}, {}, {})
    assert check_parity(package).passed


def test_the_fusion_fold_adapts_its_folds_and_refuses_a_single_counterfeit() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, len(fusion.INPUTS))).astype(np.float32)
    y = np.zeros(60, int)
    y[:3] = 1  # three counterfeits: three folds, in-sample thresholds
    assert fusion.fit_fusion(x, y).predict_proba(x).shape == (60, 2)
    assert fusion.out_of_fold(x, y).shape == (60,)
    y[1:3] = 0
    with pytest.raises(InvalidInputError, match="at least 2 counterfeit") as err:
        fusion.fit_fusion(x, y)
    assert err.value.field == "fusion_fold"


def test_the_serving_design_rows_match_the_training_design_matrix() -> None:
    import pandas as pd

    from couturier.domains.authentication import listing_model

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {name: rng.normal(size=50) for name in listing_model.NUMERIC_FEATURES}
    ).astype(object)
    frame.iloc[0, 0] = None  # missing
    frame.iloc[1, 1] = True  # a boolean feature
    frame.iloc[2, 2] = float("nan")
    frame["category"] = ["bag", "shoes", "nonsense", *["watch"] * 47]
    rows = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
    want = listing_model.design_matrix(frame)
    got = listing_model.design_rows(rows)
    assert np.array_equal(np.isnan(want), np.isnan(got))
    assert np.allclose(np.nan_to_num(want), np.nan_to_num(got))
