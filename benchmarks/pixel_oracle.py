"""Do the photos carry the flaws the oracle reads? A "pixel oracle" on one simulated world.

    python benchmarks/pixel_oracle.py --out FILE [--listings 100000] [--device cuda]
        [--epochs 10] [--workers N]

The oracle (``marketplace/_oracle.py``) reads each listing's exact flaw deviations; the image
model has to measure them from 96 px JPEG photos through framing, zoom, lighting, blur, noise
and compression. The learning curve (``image_learning_curve.py``) showed the image model
stalling far below the oracle. Is that the model, or do the photos not carry the flaws?

This script trains a *metrology* network: the image model's architecture with six outputs,
told what to measure. It regresses every flaw its photo's view shows (in sigma units, from
the simulator's truth: something no real training set has, which is the point of an oracle)
from one photo and its context (house, view), on the photos of the oldest 75% of listings.
On the next 5% it fits, per view and flaw, how its reading depends on the truth,
``reading = alpha + beta z + e`` with ``e ~ N(0, tau^2)``: ``(reading - alpha) / beta`` is
then a measurement of ``z`` with noise variance ``(tau / beta)^2``. Each holdout listing (the
newest 20%) combines its photos' measurements of a flaw by inverse variance, and the oracle's
own formula, told that noise (``oracle_logit(noise_var=...)``), scores it: the pixel oracle.

Its PR-AUC next to the oracle's says how much of the oracle's knowledge survives the photos
for a network that knows what to look for: a lower bound on what the pixels hold (a finer
metrology network would do better). On the same split it also trains the image model as the
recipe does (truth labels, no flaw values) for the gap on the other side.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from _results import write_result  # beside this script, on sys.path when it runs
from image_learning_curve import (  # beside this script
    PhotoWorld,
    flagged_at_1pct_fpr,
    load_alone,
    load_world,
)


def main() -> None:
    args = _parse_args()
    from sklearn.metrics import average_precision_score

    from couturier.marketplace._flaws import FLAWS, NATURAL_SIGMA, VIEWS, VISIBILITY

    world = load_world(args.listings, args.seed, args.workers)
    result: dict[str, Any] = {"listings": args.listings, "device": args.device, **world.timings}
    view = world.photos["view"].map({v: i for i, v in enumerate(VIEWS)}).to_numpy()
    z = world.truth[[f"flaw_{f}" for f in FLAWS]].to_numpy() / NATURAL_SIGMA  # per listing
    mask = VISIBILITY[view]  # per photo: the flaws its view shows
    train = world.at < world.valid_start
    valid = (world.at >= world.valid_start) & (world.at < world.hold_start)
    hold = world.at >= world.hold_start

    t0 = time.perf_counter()
    net, history = _train_metrology(world, z[world.at], mask, train, valid, args)
    result["metrology"] = {"train_seconds": round(time.perf_counter() - t0, 1), "history": history}
    image_model = load_alone("domains.authentication.image_model")
    reading = np.full((len(world.images), len(FLAWS)), np.nan)
    scored = valid | hold
    reading[scored] = image_model.predict_logits(
        net, world.images[scored], world.contexts[scored], args.device
    )

    calibration = _calibrate(world, z, view, valid, reading)
    result["calibration"] = calibration.report
    print("calibration", json.dumps(calibration.report), flush=True)

    first = world.hold_start
    n_hold = len(world.truth) - first
    measured_z, visible, noise_var = _combine(world, view, mask, hold, reading, calibration)
    exact, pixel = _oracle_logits(world, first, z[first:], measured_z, visible, noise_var)
    y = world.truth["is_counterfeit"].to_numpy()[first:]
    stored = world.truth["oracle_logit"].to_numpy()[first:]
    result["holdout"] = {
        "listings": int(n_hold),
        "counterfeit": int(y.sum()),
        "oracle_recomputed_max_abs_diff": float(np.max(np.abs(exact - stored))),
        "oracle_pr_auc": round(float(average_precision_score(y, stored)), 4),
        "pixel_oracle_pr_auc": round(float(average_precision_score(y, pixel)), 4),
        "oracle_recall_at_1pct_fpr": _recall(stored, y),
        "pixel_oracle_recall_at_1pct_fpr": _recall(pixel, y),
    }
    print("holdout", result["holdout"], flush=True)

    if not args.skip_classifier:  # the image model as the recipe trains it, same split
        result["image_model"] = _image_model_baseline(world, train, valid, hold, args.device)
        print("image model", result["image_model"], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, result)
    print(json.dumps(result, indent=1))


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--photos-per-epoch", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-classifier", action="store_true")
    return parser.parse_args()


@dataclass(frozen=True)
class Calibration:
    """Per view and flaw (rows: views, columns: flaws), ``reading = alpha + beta z + e``:
    ``noise`` is the measurement variance ``(tau / beta)^2`` in sigma units squared, infinite
    where the view does not show the flaw. ``report`` is the fit's summary for the result."""

    alpha: np.ndarray
    beta: np.ndarray
    noise: np.ndarray
    report: dict[str, dict[str, Any]]


def _calibrate(
    world: PhotoWorld, z: np.ndarray, view: np.ndarray, valid: np.ndarray, reading: np.ndarray
) -> Calibration:
    """How each view's reading of each flaw depends on the truth (validation photos)."""
    from couturier.marketplace._flaws import FLAWS, VIEWS, VISIBILITY

    alpha = np.zeros((len(VIEWS), len(FLAWS)))
    beta = np.ones_like(alpha)
    noise = np.full_like(alpha, np.inf)  # measurement variance, sigma units squared
    report: dict[str, dict[str, Any]] = {}
    for v, name in enumerate(VIEWS):
        for k, flaw in enumerate(FLAWS):
            if not VISIBILITY[v, k]:
                continue
            rows = valid & (view == v)
            truth_z, read = z[world.at[rows], k], reading[rows, k]
            beta[v, k], alpha[v, k] = np.polyfit(truth_z, read, 1)
            tau = float(np.std(read - alpha[v, k] - beta[v, k] * truth_z))
            noise[v, k] = (tau / beta[v, k]) ** 2
            report.setdefault(name, {})[flaw] = {
                "r2": round(float(np.corrcoef(truth_z, read)[0, 1] ** 2), 3),
                "beta": round(float(beta[v, k]), 3),
                "noise_sd": round(float(np.sqrt(noise[v, k])), 3),
                "photos": int(rows.sum()),
            }
    return Calibration(alpha, beta, noise, report)


def _combine(
    world: PhotoWorld,
    view: np.ndarray,
    mask: np.ndarray,
    hold: np.ndarray,
    reading: np.ndarray,
    calibration: Calibration,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The holdout's listings: their photos' measurements of each flaw combined by inverse
    variance, as (measured z, visible, noise variance) per listing and flaw."""
    from couturier.marketplace._flaws import FLAWS

    alpha, beta, noise = calibration.alpha, calibration.beta, calibration.noise
    photos = np.flatnonzero(hold)
    first = world.hold_start
    n_hold = len(world.truth) - first
    precision = np.zeros((n_hold, len(FLAWS)))
    weighted = np.zeros((n_hold, len(FLAWS)))
    for k in range(len(FLAWS)):
        shows = photos[mask[photos, k]]
        v = view[shows]
        measured = (reading[shows, k] - alpha[v, k]) / beta[v, k]
        np.add.at(precision[:, k], world.at[shows] - first, 1.0 / noise[v, k])
        np.add.at(weighted[:, k], world.at[shows] - first, measured / noise[v, k])
    visible = precision > 0
    measured_z = np.where(visible, weighted / np.where(visible, precision, 1.0), 0.0)
    noise_var = np.where(visible, 1.0 / np.where(visible, precision, 1.0), 0.0)
    return measured_z, visible, noise_var


def _image_model_baseline(
    world: PhotoWorld, train: np.ndarray, valid: np.ndarray, hold: np.ndarray, device: str
) -> dict[str, Any]:
    """The image model as the recipe trains it (truth labels, no flaw values), same split."""
    from sklearn.metrics import average_precision_score

    image_model = load_alone("domains.authentication.image_model")
    t0 = time.perf_counter()
    rows = np.flatnonzero(train | valid)
    trained = image_model.train_image_model(
        world.images[rows],
        world.contexts[rows],
        world.label[rows],
        world.owner[rows],
        valid[rows],
        image_model.ImageTrainConfig(epochs=20, patience=5, device=device),
    )
    logits = image_model.predict_logits(
        trained.net, world.images[hold], world.contexts[hold], device
    )
    best, y_best = image_model.listing_max(world.owner[hold], logits, world.label[hold])
    return {
        "holdout_pr_auc": round(float(average_precision_score(y_best, best)), 4),
        "recall_at_1pct_fpr": _recall(best, y_best),
        "train_seconds": round(time.perf_counter() - t0, 1),
    }


def _train_metrology(
    world: PhotoWorld,
    target: np.ndarray,
    mask: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray,
    args: argparse.Namespace,
) -> tuple[Any, list[dict[str, float]]]:
    """The image model's network with six outputs, regressing the visible flaws (masked MSE)."""
    import torch
    from torch import nn

    image_model = load_alone("domains.authentication.image_model")
    config = image_model.ImageTrainConfig(device=args.device, dropout=0.1, seed=args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device(args.device)
    net = image_model._build(config)
    net.out = nn.Linear(image_model.EMBEDDING_DIM, target.shape[1])
    net.to(device)
    x_all = torch.from_numpy(world.images).to(device)
    c_all = torch.from_numpy(world.contexts).to(device)
    clipped, weight = np.clip(target, -12, 12).astype(np.float32), mask.astype(np.float32)
    t_all, m_all = torch.from_numpy(clipped).to(device), torch.from_numpy(weight).to(device)
    train_idx, valid_idx = np.flatnonzero(train), np.flatnonzero(valid)
    valid_target, valid_mask = clipped[valid_idx], weight[valid_idx]
    per_epoch = min(args.photos_per_epoch, len(train_idx))
    batch = 256
    steps = args.epochs * (per_epoch // batch)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps, pct_start=0.15)
    history: list[dict[str, float]] = []
    best: tuple[float, dict[str, Any]] = (np.inf, {})
    crop = config.crop
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        net.train()
        chosen = rng.choice(train_idx, per_epoch, replace=False)
        losses = []
        for k in range(0, per_epoch - batch + 1, batch):
            idx = torch.from_numpy(chosen[k : k + batch]).to(device)
            i, j = rng.integers(0, 96 - crop + 1, size=2)
            x = x_all[idx, i : i + crop, j : j + crop].float()
            out = net(x, c_all[idx])[0]
            loss = (((out - t_all[idx]) ** 2) * m_all[idx]).sum() / m_all[idx].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        # the image model's batched scoring (eval mode, no gradients), six outputs a photo
        read = image_model._score(net, x_all, c_all, valid_idx, 1024)
        valid_mse = float((((read - valid_target) ** 2) * valid_mask).sum() / valid_mask.sum())
        history.append(
            {
                "epoch": epoch,
                "train_mse": round(float(np.mean(losses)), 4),
                "valid_mse": round(valid_mse, 4),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        print("metrology", history[-1], flush=True)
        if valid_mse < best[0]:
            best = (valid_mse, {k: v.clone() for k, v in net.state_dict().items()})
    net.load_state_dict(best[1])
    return net.to("cpu").eval(), history


def _oracle_logits(
    world: PhotoWorld,
    first: int,
    z: np.ndarray,
    measured: np.ndarray,
    visible: np.ndarray,
    noise_var: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The oracle's logit of each holdout listing recomputed from the truth (a check of the
    inputs below), and the same formula on the photos' measurements with their noise."""
    from couturier.marketplace._oracle import PriceModel, oracle_logit
    from couturier.marketplace._scenarios import ALL_FACTORIES, Scenario

    features = load_alone("domains.authentication.features")
    ids = world.listings["listing_id"].to_numpy()[first:]
    # the listing features' own read and join (price ratio, serial signals), as training sees them
    row = features._listing_features(world.market).set_index("listing_id").loc[ids]
    condition = world.market.read("listings", ["listing_id", "condition"])
    condition = condition.set_index("listing_id").loc[ids, "condition"]
    truth = world.truth.loc[ids]
    weights = Scenario(0.0).factory_weights(0.0)  # the default world: no drift
    exact, pixel = np.empty(len(ids)), np.empty(len(ids))
    for i in range(len(ids)):
        common = {
            "propensity": float(truth["seller_propensity"].iat[i]),
            "price_llr": PriceModel.llr(
                str(condition.iat[i]), float(row["log_price_ratio"].iat[i])
            ),
            "visible": visible[i],
            "serial_stated": bool(row["serial_stated"].iat[i]),
            "serial_malformed": bool(row["serial_malformed"].iat[i]),
            "factories": ALL_FACTORIES,
            "weights": weights,
            "severity": float(truth["severity_scale"].iat[i]),
        }
        exact[i] = oracle_logit(z=z[i], **common)
        pixel[i] = oracle_logit(z=measured[i], noise_var=noise_var[i], **common)
    return exact, pixel


def _recall(score: np.ndarray, y: np.ndarray) -> float:
    return round(float(np.mean(flagged_at_1pct_fpr(score, y))), 3)


if __name__ == "__main__":
    main()
