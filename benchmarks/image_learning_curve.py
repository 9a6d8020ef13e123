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

On a machine without the platform's store clients (Feast, MLflow: a GPU box), the simulator
and the image model are loaded alone (``_image_model``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import numpy as np


def _image_model() -> Any:
    try:
        from couturier.domains.authentication import image_model

        return image_model
    except ImportError:  # the domain package imports its features (Feast) and recipe (MLflow)
        import couturier

        root = Path(couturier.__file__).parent
        for name in ("couturier.domains", "couturier.domains.authentication"):
            package = types.ModuleType(name)
            package.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
            sys.modules[name] = package
        return importlib.import_module("couturier.domains.authentication.image_model")


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
    args = parser.parse_args()
    from concurrent.futures import ProcessPoolExecutor

    from sklearn.metrics import average_precision_score

    from couturier.marketplace import Marketplace, SimulationConfig, simulate

    image_model = _image_model()
    from couturier.domains.authentication.photos import decode_photos

    result: dict[str, Any] = {
        "listings": args.listings,
        "device": args.device,
        "widths": args.widths or "default",
        "epochs": args.epochs,
        "runs": [],
    }
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="couturier-curve-"))
    config = SimulationConfig.of(listings=args.listings, seed=args.seed)
    simulate(config, work / "market", workers=args.workers)
    market = Marketplace(work / "market")
    result["simulate_seconds"] = round(time.perf_counter() - t0, 1)
    print("simulated", args.listings, "in", result["simulate_seconds"], "s", flush=True)

    listings = market.read("listings", ["listing_id", "brand_id", "created_at"])
    listings = listings.sort_values("created_at", kind="stable").reset_index(drop=True)
    truth = market.read("truth").set_index("listing_id").loc[listings["listing_id"]]
    n = len(listings)
    hold_start, valid_start = int(n * 0.8), int(n * 0.75)
    t0 = time.perf_counter()
    photos = market.read("photos", ["listing_id", "view", "image"])
    blobs = list(photos["image"])
    chunks = [blobs[i : i + 5000] for i in range(0, len(blobs), 5000)]
    with ProcessPoolExecutor(args.workers) as pool:
        images = np.concatenate(list(pool.map(decode_photos, chunks)))
    del blobs, chunks
    position = dict(zip(listings["listing_id"], range(n), strict=True))
    at = photos["listing_id"].map(position).to_numpy()
    brand = listings["brand_id"].to_numpy()[at]
    contexts = image_model.context_codes(brand, photos["view"])
    label = truth["is_counterfeit"].to_numpy().astype(np.float32)[at]
    owner = photos["listing_id"].to_numpy()
    result["photos"] = len(images)
    result["decode_seconds"] = round(time.perf_counter() - t0, 1)
    print("decoded", len(images), "photos in", result["decode_seconds"], "s", flush=True)

    hold = at >= hold_start
    y_hold = truth["is_counterfeit"].to_numpy()[hold_start:]
    result["holdout"] = {
        "listings": int(n - hold_start),
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
        widths = {"widths": tuple(int(w) for w in args.widths.split(","))} if args.widths else {}
        cfg = image_model.ImageTrainConfig(
            epochs=args.epochs,
            patience=args.patience,
            device=args.device,
            seed=args.seed,
            **widths,
        )
        t0 = time.perf_counter()
        trained = image_model.train_image_model(
            images[rows], contexts[rows], label[rows], owner[rows], valid, cfg
        )
        seconds = time.perf_counter() - t0
        scores = image_model.predict_logits(trained.net, images[hold], contexts[hold], args.device)
        best, y = image_model.listing_max(owner[hold], scores, label[hold])
        flaws = _recall_by_flaw(best, y, truth.loc[np.unique(owner[hold])])
        run = {
            "train_listings": int(valid_start - first),
            "train_counterfeit_photos": int(label[rows][~valid].sum()),
            "best_epoch": trained.best_epoch,
            "valid_pr_auc": round(max(h["valid_listing_pr_auc"] for h in trained.history), 4),
            "holdout_pr_auc": round(float(average_precision_score(y, best)), 4),
            "train_seconds": round(seconds, 1),
            **flaws,
        }
        result["runs"].append(run)
        print("size", size, run, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=1))


def _recall_by_flaw(best: np.ndarray, y: np.ndarray, truth: Any) -> dict[str, Any]:
    """Recall at 1% FPR of the listing scores, overall and per flaw kind by size (terciles of
    the flaw's magnitude among the counterfeits): which flaws the photos give away.
    ``truth`` rows are the listings in ``listing_max``'s order (sorted ids)."""
    import pandas as pd

    threshold = np.quantile(best[y == 0], 0.99)
    fakes = truth[y == 1].copy()
    fakes["flagged"] = best[y == 1] > threshold
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
