"""The image model: a CNN on a photo's pixels and spectrum, and how it is trained.

One photo (``uint8 (96, 96, 3)``) and its context (``brand_id * 4 + view``, from
:func:`context_codes`) in; a counterfeit ``logit`` and a 64-d ``embedding`` out. The network
is in ``_image_net.py``, its ONNX export, int8 variant and registry package in
``_image_onnx.py``; this module trains it and re-exports both, so
``couturier.domains.authentication.image_model`` is the one name callers import.

Augmentation keeps what the flaws are made of: random crops (framing) and a brightness jitter,
never flips or rotations (a mirrored monogram is a rotation flaw).

Training samples every counterfeit photo and a few authentic ones per epoch (counterfeits are
a few percent of listings), stops early on the validation listings' PR-AUC, and keeps the best
epoch. With ~2,200 counterfeit training photos (the 50k benchmark world) the first version
overfit; AdamW weight decay 0.05 (not 1e-4), dropout 0.3 on the pooled features, a pooled
spectrum grid and an auxiliary task (name the house from the pixels alone, weight 0.3) took
its best validation listing PR-AUC from 0.49 to 0.53. The score is not calibrated: the fusion
model calibrates it.

The experts' control-point reports (``PointTargets``, built by ``labels.photo_targets``) add
two masked losses beside the verdict's: a fail logit per control point (binary cross-entropy)
and, for the measurable points, the measurement in house-standardized units (smooth L1). A
target counts only where the expert recorded the point *and* the photo's view shows it; a
photo of a listing without a report trains on its verdict alone.

>>> cfg = ImageTrainConfig(epochs=2)  # doctest: +SKIP
>>> trained = train_image_model(images, contexts, labels, listing_ids, valid, cfg)  # doctest: +SKIP
>>> fp32 = export_onnx(trained.net)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from couturier.domains.authentication._image_net import (
    CONTEXTS,
    EMBEDDING_DIM,
    MEASURED,
    MODEL_NAME,
    POINTS,
    SPECTRUM_GRID,
    VISIBLE,
    build_network,
    context_codes,
)
from couturier.domains.authentication._image_onnx import (
    export_onnx,
    package,
    quantize_int8,
    run_onnx,
    torch_reference,
)
from couturier.errors import InvalidInputError
from couturier.marketplace import VIEWS

__all__ = [
    "CONTEXTS",
    "EMBEDDING_DIM",
    "MEASURED",
    "MODEL_NAME",
    "POINTS",
    "SPECTRUM_GRID",
    "VISIBLE",
    "ImageTrainConfig",
    "PointTargets",
    "TrainedImageModel",
    "context_codes",
    "export_onnx",
    "listing_max",
    "package",
    "point_max",
    "predict_logits",
    "quantize_int8",
    "run_onnx",
    "torch_reference",
    "train_image_model",
]


@dataclass(frozen=True)
class ImageTrainConfig:
    """How to train the image model. The defaults are what the benchmark measured."""

    epochs: int = 16
    patience: int = 4  # epochs without a better validation PR-AUC before stopping
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 0.05  # AdamW's decoupled decay: 1e-4 let the CNN overfit
    negatives_per_positive: float = 4.0  # authentic photos drawn per counterfeit photo, per epoch
    max_photos_per_epoch: int = 12_000  # the recipe's budget: ~16 x 12k photo passes
    dropout: float = 0.3  # on the pooled features, during training
    house_loss_weight: float = 0.3  # auxiliary task: tell the house from the pixels alone
    point_loss_weight: float = 3.0  # the reports' pass/fail per control point
    measure_loss_weight: float = 2.0  # the reports' measurements, house-standardized
    reports: bool = True  # learn from the experts' reports (False: from verdicts alone)
    crop: int = 88  # random crops of this side during training
    brightness_jitter: float = 0.05  # in log-intensity units
    widths: tuple[int, int, int, int, int] = (24, 32, 64, 96, 128)
    seed: int = 7
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    device: str = "cpu"  # where torch trains: "cuda" on a machine with a GPU

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or not 32 <= self.crop <= 96:
            raise InvalidInputError(
                "epochs >= 1, batch_size >= 2 and 32 <= crop <= 96 are required",
                field="image_train_config",
            )


#: Validation judges an epoch by its listings' PR-AUC when it holds at least this many
#: counterfeit listings, else by its loss (a PR-AUC of a handful of positives is noise).
MIN_VALID_COUNTERFEITS = 20


@dataclass(frozen=True)
class PointTargets:
    """Per photo, what the experts' reports say of it. ``fail``: ``(n, len(POINTS))``, 1 the
    expert failed the point, 0 passed it; ``measure``: ``(n, len(MEASURED))`` in
    house-standardized units. NaN where there is no target: the listing has no report, the
    expert did not record the point, or the photo's view does not show it."""

    fail: np.ndarray
    measure: np.ndarray

    @classmethod
    def none(cls, n: int) -> PointTargets:
        """No report for any of ``n`` photos: they train on their verdicts alone."""
        return cls(
            np.full((n, len(POINTS)), np.nan, np.float32),
            np.full((n, len(MEASURED)), np.nan, np.float32),
        )

    @property
    def reported(self) -> int:
        """How many photos have at least one target."""
        return int((~np.isnan(self.fail)).any(axis=1).sum())


def _masked_losses(net: Any, embedding: Any, fail: Any, measure: Any) -> tuple[Any, Any]:
    """Binary cross-entropy over the recorded fail/pass targets, smooth L1 over the recorded
    measurements (clipped to 8 units: a typo in a report must not dominate a batch)."""
    import torch
    from torch.nn import functional as F  # noqa: N812

    zero = embedding.sum() * 0.0
    seen = ~torch.isnan(fail)
    point_loss = (
        F.binary_cross_entropy_with_logits(net.points(embedding)[seen], fail[seen])
        if bool(seen.any())
        else zero
    )
    seen = ~torch.isnan(measure)
    measure_loss = (
        F.smooth_l1_loss(net.measures(embedding)[seen], measure[seen].clamp(-8.0, 8.0))
        if bool(seen.any())
        else zero
    )
    return point_loss, measure_loss


@dataclass
class TrainedImageModel:
    """What :func:`train_image_model` returns: the network at its best epoch and its history."""

    net: Any  # the torch module, in eval mode, at its best epoch
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def _build(config: ImageTrainConfig) -> Any:
    """A fresh network shaped by ``config`` (benchmarks build one to time or probe it)."""
    return build_network(config.crop, config.widths, config.dropout)


def train_image_model(  # noqa: PLR0915 - one training loop (epochs, batches, early stop) read top to bottom
    images: np.ndarray,
    contexts: np.ndarray,
    labels: np.ndarray,
    listing_ids: np.ndarray,
    valid: np.ndarray,
    config: ImageTrainConfig | None = None,
    log: Any = None,
    targets: PointTargets | None = None,
) -> TrainedImageModel:
    """Train on the photos where ``valid`` is False, stop early on those where it is True.

    ``labels`` are per photo (the listing's verdict); ``targets`` what the experts' reports
    say of each photo (None: verdicts only). Validation scores a listing by the maximum logit
    of its photos, as the fusion model sees it.
    """
    import torch
    from sklearn.metrics import average_precision_score
    from torch.nn import functional as F  # noqa: N812

    config = config or ImageTrainConfig()
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    y = np.asarray(labels, dtype=np.float32)
    targets = targets or PointTargets.none(len(y))
    train_idx, valid_idx = np.flatnonzero(~valid), np.flatnonzero(valid)
    pos, neg = train_idx[y[train_idx] == 1], train_idx[y[train_idx] == 0]
    if len(pos) == 0 or len(neg) == 0 or len(valid_idx) == 0:
        raise InvalidInputError(
            f"the image model needs counterfeit and authentic training photos and validation "
            f"photos; got {len(pos)} counterfeit, {len(neg)} authentic, {len(valid_idx)} "
            "validation; simulate more listings or a higher prevalence",
            field="photos",
        )
    device = torch.device(config.device)
    x_all = torch.from_numpy(np.ascontiguousarray(images))
    c_all = torch.from_numpy(np.asarray(contexts, dtype=np.int64))
    y_all = torch.from_numpy(y)
    f_all = torch.from_numpy(np.asarray(targets.fail, dtype=np.float32))
    m_all = torch.from_numpy(np.asarray(targets.measure, dtype=np.float32))
    if device.type != "cpu":  # the photos go over once; batches are cut where they live
        x_all, c_all, y_all = x_all.to(device), c_all.to(device), y_all.to(device)
        f_all, m_all = f_all.to(device), m_all.to(device)
    net = _build(config).to(device)
    # with reports every photo teaches what to measure: an epoch takes all it can; with
    # verdicts alone, authentic photos beyond a few per counterfeit added nothing (measured)
    reported = bool((~np.isnan(targets.fail[train_idx])).any())
    wanted = len(pos) + len(neg) if reported else len(pos) * (1 + config.negatives_per_positive)
    per_epoch = min(config.max_photos_per_epoch, int(wanted))
    steps = config.epochs * max(1, per_epoch // config.batch_size)
    opt = torch.optim.AdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.learning_rate, total_steps=steps, pct_start=0.15
    )
    best: tuple[float, int, dict[str, Any]] = (-np.inf, -1, {})
    history: list[dict[str, float]] = []
    step = 0
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        n_pos = min(len(pos), per_epoch // 2)
        chosen = np.concatenate(
            [
                rng.choice(pos, n_pos, replace=False),
                rng.choice(neg, min(len(neg), per_epoch - n_pos), replace=False),
            ]
        )
        rng.shuffle(chosen)
        net.train()
        losses = []
        for k in range(0, len(chosen) - config.batch_size + 1, config.batch_size):
            if step >= steps:
                break
            idx = torch.from_numpy(chosen[k : k + config.batch_size]).to(device)
            i, j = rng.integers(0, 96 - config.crop + 1, size=2)
            x = x_all[idx, i : i + config.crop, j : j + config.crop].float()
            jitter = torch.randn(len(idx), 1, 1, 1, device=device)
            x = x * torch.exp(config.brightness_jitter * jitter)
            pooled = net.encode(x)
            logit, embedding = net.head(pooled, c_all[idx])
            loss = F.binary_cross_entropy_with_logits(logit, y_all[idx])
            point_loss, measure_loss = _masked_losses(net, embedding, f_all[idx], m_all[idx])
            loss = (
                loss
                + config.point_loss_weight * point_loss
                + config.measure_loss_weight * measure_loss
            )
            if config.house_loss_weight:
                house = torch.div(c_all[idx], len(VIEWS), rounding_mode="floor")
                loss = loss + config.house_loss_weight * F.cross_entropy(net.house(pooled), house)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
        scores = _score(net, x_all, c_all, valid_idx)
        listing = listing_max(listing_ids[valid_idx], scores, y[valid_idx])
        if MIN_VALID_COUNTERFEITS <= listing[1].sum() < len(listing[1]):
            pr_auc = float(average_precision_score(listing[1], listing[0]))
        else:  # too few counterfeits for a stable PR-AUC: judge the epoch by its loss
            pr_auc = -_valid_loss(
                net, config, scores, (x_all, c_all, y_all, f_all, m_all), valid_idx
            )
        history.append(
            {
                "epoch": epoch,
                "loss": float(np.mean(losses)) if losses else float("nan"),
                "valid_listing_pr_auc": pr_auc,
                "seconds": time.perf_counter() - t0,
            }
        )
        if log is not None:
            log(history[-1])
        if pr_auc > best[0]:
            best = (pr_auc, epoch, {k: v.clone() for k, v in net.state_dict().items()})
        elif epoch - best[1] >= config.patience:
            break
    net.load_state_dict(best[2])
    net.to("cpu").eval()  # exported and served on CPU
    return TrainedImageModel(net, best[1], history, time.perf_counter() - started)


def _valid_loss(
    net: Any, config: ImageTrainConfig, scores: np.ndarray, data: tuple[Any, ...], idx: np.ndarray
) -> float:
    """The validation photos' training loss (verdict, and the reports where they have one)."""
    import torch
    from torch.nn import functional as F  # noqa: N812

    x_all, c_all, y_all, f_all, m_all = data
    rows = torch.from_numpy(idx).to(y_all.device)
    total = float(F.binary_cross_entropy_with_logits(torch.from_numpy(scores), y_all[rows].cpu()))
    with torch.no_grad():
        for k in range(0, len(idx), 512):
            part = rows[k : k + 512]
            _, embedding = net.head(net.encode(x_all[part]), c_all[part])
            point, measure = _masked_losses(net, embedding, f_all[part], m_all[part])
            share = len(part) / len(idx)
            total += share * (
                config.point_loss_weight * float(point)
                + config.measure_loss_weight * float(measure)
            )
    return total


def _score(net: Any, x_all: Any, c_all: Any, idx: np.ndarray, batch: int = 512) -> np.ndarray:
    import torch

    net.eval()
    out = []
    with torch.no_grad():
        for k in range(0, len(idx), batch):
            rows = torch.from_numpy(idx[k : k + batch]).to(x_all.device)
            out.append(net(x_all[rows], c_all[rows])[0].cpu().numpy())
    return np.concatenate(out) if out else np.empty(0, np.float32)


def predict_logits(
    net: Any, images: np.ndarray, contexts: np.ndarray, device: str = "cpu", batch: int = 1024
) -> np.ndarray:
    """The torch network's photo logits on ``device`` (for experiments; served and evaluated
    models run in ONNX Runtime, ``run_onnx``). The network is left on the CPU."""
    import torch

    where = torch.device(device)
    x = torch.from_numpy(np.ascontiguousarray(images)).to(where)
    c = torch.from_numpy(np.asarray(contexts, dtype=np.int64)).to(where)
    try:
        return _score(net.to(where), x, c, np.arange(len(x)), batch)
    finally:
        net.to("cpu")


def listing_max(
    groups: np.ndarray, scores: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per listing (``groups``): the maximum photo score and the label, as the fusion sees it."""
    order = np.argsort(groups, kind="stable")
    g, s, t = groups[order], scores[order], y[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    return np.maximum.reduceat(s, starts), np.maximum.reduceat(t, starts)


def point_max(at: np.ndarray, n: int, points: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """``(n, len(POINTS))``: per listing (photo ``i`` is listing ``at[i]``'s), each point's
    highest fail logit among the photos that show it; NaN where none does."""
    out = np.full((n, points.shape[1]), -np.inf)
    masked = np.where(shown & np.isfinite(points), points, -np.inf)
    np.maximum.at(out, at, masked)
    out[np.isneginf(out)] = np.nan
    return out
