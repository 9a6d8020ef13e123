"""How good can the image model get with more data? A learning curve on one simulated world.

    python benchmarks/image_learning_curve.py --out FILE [--listings 200000]
        [--sizes 12500,25000,50000,100000] [--device cuda] [--epochs 30] [--workers N]

Issue 5's accuracy gap (fusion PR-AUC 0.59 vs the oracle's 0.84 on the 50k benchmark) sits in
the image model, which learns from ~2,200 counterfeit photos there. This script simulates one
default world, holds out its newest 20% of listings, and trains the same image model
(``ImageTrainConfig`` defaults but the epochs) on the oldest ``size`` listings for each size,
validating on the 5% just before the holdout. It reports, per size, the holdout PR-AUC of the
listing's maximum photo logit (what the fusion sees), next to the oracle's PR-AUC on the same
holdout. Labels are the simulator's truth (no expert errors), so the curve is about what the
pixels hold, not about label noise.

``--supervision report`` adds what the experts' control-point reports say of each training
photo (``labels.photo_targets``: the simulator's reports, with their noise, skips and misjudged
points) to the verdicts; ``verdict`` (the default) trains on verdicts alone. Either way each
run also reports ``holdout_pr_auc_points``: a logistic regression on the validation listings
over the maximum photo logit and each control point's highest fail logit (what the fusion
adds), scored on the holdout.

On a machine without the platform's store clients (Feast, MLflow: a GPU box), the simulator
and the image model are loaded alone (``load_alone``); ``load_world`` serves
``pixel_oracle.py`` too.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from _results import write_result  # beside this script, on sys.path when it runs


def load_alone(module: str) -> Any:
    """Import ``couturier.<module>``; on a machine without the platform's store clients (Feast,
    MLflow: a GPU box) load it without its packages' ``__init__`` (which import them)."""
    try:
        return importlib.import_module(f"couturier.{module}")
    except ImportError:
        import couturier

        root = Path(couturier.__file__).parent
        for name in ("couturier.domains", "couturier.domains.authentication", "couturier.features"):
            package = types.ModuleType(name)
            package.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
            sys.modules[name] = package
        return importlib.import_module(f"couturier.{module}")


@dataclass
class PhotoWorld:
    """One simulated default world's photos, decoded, in listing-creation order.

    Listings are sorted by ``created_at``; ``at[i]`` is photo i's listing position, and
    positions from ``hold_start`` on are the holdout (newest 20%), ``valid_start`` ..
    ``hold_start`` the validation slice (the 5% before it)."""

    market: Any
    listings: Any  # DataFrame: listing_id, brand_id, created_at (sorted)
    truth: Any  # DataFrame indexed by listing_id, in ``listings``' order
    photos: Any  # DataFrame: listing_id, view
    images: np.ndarray
    contexts: np.ndarray
    at: np.ndarray
    owner: np.ndarray
    label: np.ndarray  # per photo, the listing's truth
    hold_start: int
    valid_start: int
    timings: dict[str, float]


def load_world(listings: int, seed: int, workers: int) -> PhotoWorld:
    from concurrent.futures import ProcessPoolExecutor

    from couturier.marketplace import Marketplace, SimulationConfig, simulate

    image_model = load_alone("domains.authentication.image_model")
    decode_photos = load_alone("domains.authentication.photos").decode_photos
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="couturier-world-"))
    simulate(SimulationConfig.of(listings=listings, seed=seed), work / "market", workers=workers)
    market = Marketplace(work / "market")
    timings["simulate_seconds"] = round(time.perf_counter() - t0, 1)
    print("simulated", listings, "in", timings["simulate_seconds"], "s", flush=True)

    table = market.read("listings", ["listing_id", "brand_id", "created_at"])
    table = table.sort_values("created_at", kind="stable").reset_index(drop=True)
    truth = market.read("truth").set_index("listing_id").loc[table["listing_id"]]
    n = len(table)
    t0 = time.perf_counter()
    photos = market.read("photos", ["listing_id", "view", "image"])
    blobs = list(photos.pop("image"))
    chunks = [blobs[i : i + 5000] for i in range(0, len(blobs), 5000)]
    with ProcessPoolExecutor(workers) as pool:
        images = np.concatenate(list(pool.map(decode_photos, chunks)))
    del blobs, chunks
    position = dict(zip(table["listing_id"], range(n), strict=True))
    at = photos["listing_id"].map(position).to_numpy()
    brand = table["brand_id"].to_numpy()[at]
    timings["decode_seconds"] = round(time.perf_counter() - t0, 1)
    print("decoded", len(images), "photos in", timings["decode_seconds"], "s", flush=True)
    return PhotoWorld(
        market=market,
        listings=table,
        truth=truth,
        photos=photos,
        images=images,
        contexts=image_model.context_codes(brand, photos["view"]),
        at=at,
        owner=photos["listing_id"].to_numpy(),
        label=truth["is_counterfeit"].to_numpy().astype(np.float32)[at],
        hold_start=int(n * 0.8),
        valid_start=int(n * 0.75),
        timings=timings,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--listings", type=int, default=200_000)
    parser.add_argument("--sizes", default="12500,25000,50000,100000")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--budget-s", type=float, default=float("inf"), help="no new size after")
    parser.add_argument("--widths", help="channels of the five conv stages, e.g. 48,64,128,192,256")
    parser.add_argument("--photos-per-epoch", type=int, help="max_photos_per_epoch")
    parser.add_argument("--negatives", type=float, help="negatives_per_positive")
    parser.add_argument("--supervision", choices=("verdict", "report"), default="verdict")
    args = parser.parse_args()
    from sklearn.metrics import average_precision_score

    image_model = load_alone("domains.authentication.image_model")
    result: dict[str, Any] = {
        "listings": args.listings,
        "device": args.device,
        "widths": args.widths or "default",
        "epochs": args.epochs,
        "photos_per_epoch": args.photos_per_epoch or "default",
        "negatives_per_positive": args.negatives or "default",
        "supervision": args.supervision,
        "runs": [],
    }
    world = load_world(args.listings, args.seed, args.workers)
    targets = _report_targets(world) if args.supervision == "report" else None
    result.update(world.timings, photos=len(world.images))
    truth, at, owner, label = world.truth, world.at, world.owner, world.label
    images, contexts = world.images, world.contexts
    hold_start, valid_start = world.hold_start, world.valid_start
    hold = at >= hold_start
    y_hold = truth["is_counterfeit"].to_numpy()[hold_start:]
    result["holdout"] = {
        "listings": int(len(truth) - hold_start),
        "counterfeit": int(y_hold.sum()),
        "oracle_pr_auc": round(
            float(
                average_precision_score(
                    y_hold, truth["oracle_p_counterfeit"].to_numpy()[hold_start:]
                )
            ),
            4,
        ),
    }
    print("holdout", result["holdout"], flush=True)
    started = time.perf_counter()
    for size in [int(s) for s in args.sizes.split(",")]:
        if time.perf_counter() - started > args.budget_s:
            result["runs"].append({"train_listings": size, "skipped": "over --budget-s"})
            continue
        first = max(0, valid_start - size)
        rows = np.flatnonzero((at >= first) & (at < hold_start))
        valid = at[rows] >= valid_start
        options: dict[str, Any] = {}
        if args.widths:
            options["widths"] = tuple(int(w) for w in args.widths.split(","))
        if args.photos_per_epoch:
            options["max_photos_per_epoch"] = args.photos_per_epoch
        if args.negatives:
            options["negatives_per_positive"] = args.negatives
        cfg = image_model.ImageTrainConfig(
            epochs=args.epochs,
            patience=args.patience,
            device=args.device,
            seed=args.seed,
            **options,
        )
        t0 = time.perf_counter()
        trained = image_model.train_image_model(
            images[rows],
            contexts[rows],
            label[rows],
            owner[rows],
            valid,
            cfg,
            targets=_only(targets, rows, at[rows] < valid_start),
        )
        seconds = time.perf_counter() - t0
        scores = image_model.predict_logits(trained.net, images[hold], contexts[hold], args.device)
        best, y = image_model.listing_max(owner[hold], scores, label[hold])
        with_points = _points_score(trained.net, world, rows[valid], np.flatnonzero(hold))
        flaws = _recall_by_flaw(best, y, truth.loc[np.unique(owner[hold])])
        run = {
            "train_listings": int(valid_start - first),
            "train_counterfeit_photos": int(label[rows][~valid].sum()),
            "best_epoch": trained.best_epoch,
            "valid_pr_auc": round(max(h["valid_listing_pr_auc"] for h in trained.history), 4),
            "holdout_pr_auc": round(float(average_precision_score(y, best)), 4),
            "holdout_pr_auc_points": round(with_points, 4),
            "reported_photos": 0
            if targets is None
            else int((~np.isnan(targets.fail[rows][~valid])).any(axis=1).sum()),
            "train_seconds": round(seconds, 1),
            **flaws,
        }
        result["runs"].append(run)
        print("size", size, run, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, result)
    print(json.dumps(result, indent=1))


def _report_targets(world: PhotoWorld) -> Any:
    """Every photo's control-point targets from its listing's report (whichever verdict it
    had), measurements standardized by the authentic reports of the oldest 75%."""
    labels = load_alone("domains.authentication.labels")
    frame = labels.label_rows(world.market).merge(world.listings[["listing_id", "brand_id"]])
    older = frame["listing_id"].isin(world.listings["listing_id"][: world.valid_start])
    scale = labels.MeasureScale.fit(frame[older])
    return labels.photo_targets(frame, world.photos, frame["verdict"].notna(), scale)


def _only(targets: Any, rows: np.ndarray, keep: np.ndarray) -> Any:
    """``targets`` of ``rows``, NaN outside ``keep`` (validation photos train on nothing)."""
    if targets is None:
        return None
    fail, measure = targets.fail[rows].copy(), targets.measure[rows].copy()
    fail[~keep], measure[~keep] = np.nan, np.nan
    return type(targets)(fail, measure)


def _points_score(net: Any, world: PhotoWorld, valid: np.ndarray, hold: np.ndarray) -> float:
    """Holdout PR-AUC of a logistic regression over each listing's maximum photo logit and
    per-point highest fail logit, fitted on the validation listings (truth labels)."""
    import torch
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.pipeline import make_pipeline

    image_model = load_alone("domains.authentication.image_model")

    def features(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outs = []
        with torch.no_grad():
            for k in range(0, len(rows), 512):
                r = rows[k : k + 512]
                logit, _, points = net(
                    torch.from_numpy(world.images[r]), torch.from_numpy(world.contexts[r])
                )
                outs.append(np.column_stack([logit.numpy(), points.numpy()]))
        out = np.concatenate(outs)
        ids, at = np.unique(world.owner[rows], return_inverse=True)
        best = np.full(len(ids), -np.inf)
        np.maximum.at(best, at, out[:, 0])
        views = world.contexts[rows] % 4
        points = image_model.point_max(at, len(ids), out[:, 1:], image_model.VISIBLE[views])
        y = np.zeros(len(ids))
        np.maximum.at(y, at, world.label[rows])
        return np.column_stack([best, points]), y

    x_valid, y_valid = features(valid)
    x_hold, y_hold = features(hold)
    model = make_pipeline(SimpleImputer(strategy="median"), LogisticRegression(max_iter=2000))
    model.fit(x_valid, y_valid)
    return float(average_precision_score(y_hold, model.predict_proba(x_hold)[:, 1]))


def flagged_at_1pct_fpr(score: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which positives score above the negatives' 99th percentile (a 1% false-positive rate)."""
    flagged: np.ndarray = score[y == 1] > np.quantile(score[y == 0], 0.99)
    return flagged


def _recall_by_flaw(best: np.ndarray, y: np.ndarray, truth: Any) -> dict[str, Any]:
    """Recall at 1% FPR of the listing scores, overall and per flaw kind by size (terciles of
    the flaw's magnitude among the counterfeits): which flaws the photos give away.
    ``truth`` rows are the listings in ``listing_max``'s order (sorted ids)."""
    import pandas as pd

    fakes = truth[y == 1].copy()
    fakes["flagged"] = flagged_at_1pct_fpr(best, y)
    by_flaw: dict[str, dict[str, float]] = {}
    for column in [c for c in truth.columns if c.startswith("flaw_")]:
        size = fakes[column].astype(float).abs()
        if size.max() <= 0:
            continue
        third = pd.qcut(size, 3, labels=["small", "mid", "large"], duplicates="drop")
        recall = fakes.groupby(third, observed=True)["flagged"].mean()
        by_flaw[column] = {str(k): round(float(v), 3) for k, v in recall.items()}
    return {
        "recall_at_1pct_fpr": round(float(fakes["flagged"].mean()), 3),
        "recall_by_flaw": by_flaw,
    }


if __name__ == "__main__":
    main()
