"""The evaluation report: one self-contained HTML file per registered authentication graph.

Curves (ROC and PR for every stage, calibration), decisions by outcome, cost, slices, each
control point's suspicion against the experts' reports, and the worst errors shown with their
photos, their per-control-point suspicion (with the photo that shows it, beside what the expert
recorded) and their evidence, so an authentication expert can see what the model missed and
why it thought so. When the marketplace has the simulator's truth,
the oracle is drawn and tabled beside the model and each error says what the item really was;
without it the report shows the model alone.
"""

from __future__ import annotations

import base64
import io
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, select_autoescape

from couturier.domains.authentication import labels
from couturier.domains.authentication._recipe_data import ORACLE, Scored
from couturier.domains.authentication.decision import CostModel, DecisionPolicy
from couturier.domains.authentication.evidence import ReferenceSet
from couturier.evaluation import Evaluation
from couturier.marketplace import CONTROL_POINTS

__all__ = ["write_report"]

HEADLINE = ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "ece", "expected_cost_per_1000")
_LABEL = {p.name: p.label for p in CONTROL_POINTS}
WORST = 4


def write_report(  # noqa: PLR0913 - each keyword is one section of the report
    scored: Scored,
    references: ReferenceSet,
    photos: pd.DataFrame,
    *,
    policy: DecisionPolicy,
    costs: CostModel,
    metrics: dict[str, float],
    oracle: dict[str, float],
    evaluation: Evaluation,
    stage_pr_auc: dict[str, float],
    control_points: dict[str, dict[str, float]],
    versions: dict[str, int],
    folder: Path,
) -> Path:
    """Write ``authentication-v<N>.html`` into ``folder`` and return its path.

    ``oracle`` holds the oracle's metrics on the same listings; empty when the marketplace has
    no ``truth`` table, and the report then shows the model alone.
    """
    frame, s = scored.frame, scored.scores
    y = frame["label"].to_numpy()
    decision = s.decision
    decisions = {
        d: {
            "counterfeit": int(np.sum((decision == d) & (y == 1))),
            "authentic": int(np.sum((decision == d) & (y == 0))),
            "share": float(np.mean(decision == d)),
        }
        for d in ("authentic", "review", "counterfeit")
    }
    curves = {
        "fusion": s.probability,
        "listing model": s.listing_p,
        "image model": s.stage_score("image_max_logit"),
    }
    if ORACLE in frame.columns:
        curves["oracle"] = frame[ORACLE].to_numpy()
    photo_bytes = photos.set_index("photo_id")["image"]
    template = files("couturier.domains.authentication") / "templates" / "report.html.j2"
    html = (
        Environment(autoescape=select_autoescape(default=True))
        .from_string(template.read_text())
        .render(
            versions=versions,
            n=len(frame),
            positives=int(y.sum()),
            cutoff=str(frame["event_timestamp"].min()),
            headline=[k for k in HEADLINE if k in metrics],
            metrics=metrics,
            oracle=oracle,
            has_oracle=bool(oracle),
            stages=stage_pr_auc,
            plots=_plots(y, curves),
            policy=policy,
            costs=costs,
            decisions=decisions,
            slices=sorted(evaluation.slices.items()),
            points=[(_LABEL[k], v) for k, v in control_points.items()],
            errors=_worst(scored, references, photo_bytes),
        )
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"authentication-v{versions['authentication']}.html"
    path.write_text(html)
    return path


def _worst(
    scored: Scored, references: ReferenceSet, photo_bytes: pd.Series
) -> list[dict[str, Any]]:
    frame, s = scored.frame, scored.scores
    y = frame["label"].to_numpy()
    p = s.probability
    photo_listing = scored.photos["listing_id"].to_numpy()
    picks = [("missed counterfeit", i) for i in np.argsort(np.where(y == 1, p, np.inf))[:WORST]]
    picks += [("false alarm", i) for i in np.argsort(np.where(y == 0, -p, np.inf))[:WORST]]
    out = []
    for kind, i in picks:
        if (kind == "missed counterfeit") != bool(y[i]):
            continue  # fewer errors of this kind than WORST
        row = frame.iloc[i]
        truth, label_error = _truth(row)
        rows = np.flatnonzero(photo_listing == row["listing_id"])
        evidence = references.evidence(s.neighbours, rows, k=5)
        out.append(
            {
                "kind": kind,
                "listing_id": int(row["listing_id"]),
                "brand_id": int(row["brand_id"]),
                "category": row["category"],
                "price": float(row["price"]),
                "p": float(p[i]),
                "oracle": float(row[ORACLE]) if ORACLE in row.index else None,
                "verdict": row["verdict"],
                "truth": truth,
                "label_error": label_error,
                "points": [
                    {
                        **cp,
                        "label": _LABEL[cp["point"]],
                        "expert": _recorded(row.get(labels.result_column(cp["point"]))),
                    }
                    for cp in s.control_points(rows)
                ],
                "photos": [_b64(bytes(b)) for b in scored.photos["image"].to_numpy()[rows]],
                "evidence": [
                    {**r, "image": _b64(bytes(photo_bytes[r["photo_id"]]))}
                    for r in evidence.as_records()
                    if r["photo_id"] in photo_bytes.index
                ],
            }
        )
    return out


def _recorded(result: Any) -> str | None:
    """What the expert recorded for a point: pass, fail, or None (not checked, no report)."""
    return str(result) if isinstance(result, str) else None


def _truth(row: pd.Series) -> tuple[str | None, bool]:
    """What the simulator says the item was, and whether the verdict got it wrong (None and
    False when the marketplace has no truth)."""
    if "factory_id" not in row.index or pd.isna(row["factory_id"]):
        return None, False
    factory = int(row["factory_id"])
    truth = "authentic" if factory < 0 else f"counterfeit (factory {factory})"
    return truth, (factory >= 0) != (row["verdict"] == "counterfeit")


def _plots(y: np.ndarray, curves: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    out = []
    fig, ax = plt.subplots(figsize=(4.2, 4))
    for name, score in curves.items():
        fpr, tpr, _ = roc_curve(y, score)
        ax.plot(fpr, tpr, label=name, linestyle=":" if name == "oracle" else "-")
    ax.set(xscale="log", xlim=(1e-3, 1), xlabel="false-positive rate (log)", ylabel="recall")
    ax.set_title("ROC")
    ax.legend(fontsize=7)
    out.append(("ROC", _png(fig)))
    fig, ax = plt.subplots(figsize=(4.2, 4))
    for name, score in curves.items():
        precision, recall, _ = precision_recall_curve(y, score)
        ax.plot(recall, precision, label=name, linestyle=":" if name == "oracle" else "-")
    ax.set(xlabel="recall", ylabel="precision", title="precision-recall")
    ax.legend(fontsize=7)
    out.append(("PR", _png(fig)))
    fig, ax = plt.subplots(figsize=(4.2, 4))
    score = curves["fusion"]
    edges = np.quantile(score, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges[1:-1], score, side="right"), 0, 9)
    mean_p = [score[bins == b].mean() for b in range(10) if (bins == b).any()]
    rate = [y[bins == b].mean() for b in range(10) if (bins == b).any()]
    top = max(*mean_p, *rate, 0.05)
    ax.plot([0, top], [0, top], linestyle=":", color="grey")
    ax.plot(mean_p, rate, marker="o")
    ax.set(xlabel="mean predicted P (deciles)", ylabel="observed rate", title="calibration")
    out.append(("calibration", _png(fig)))
    return out


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
