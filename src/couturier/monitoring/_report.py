"""The monitoring report: one self-contained HTML file over a model's stored days.

Per day: the alerts and what was flagged, the estimated performance (with its interval and
whether it could be trusted) beside the realized performance of matured cohorts and the floor,
label coverage and delay, the drift ratios of the features that moved most, new values, and
what was quarantined. Plots are PNGs inlined as base64; everything else is escaped (Jinja2
autoescape), so nothing a record carries can inject markup.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import asdict
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from couturier.monitoring._job import DayReport

__all__ = ["write_report"]


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _value(d: dict[str, Any] | None, metric: str) -> float:
    if not d or metric not in d:
        return math.nan
    v = d[metric]
    return float(v["value"] if isinstance(v, dict) else v)


def _performance_plot(reports: Sequence[DayReport], metric: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = [r.day for r in reports]
    fig, ax = plt.subplots(figsize=(8, 3))
    est = [_value(r.estimated, metric) for r in reports]
    low = [r.estimated[metric]["low"] if r.estimated else math.nan for r in reports]
    high = [r.estimated[metric]["high"] if r.estimated else math.nan for r in reports]
    ax.plot(days, est, label="estimated (label-free)", color="tab:blue")
    ax.fill_between(days, low, high, color="tab:blue", alpha=0.15)
    realized = [(r.realized["cohort"], _value(r.realized, metric)) for r in reports if r.realized]
    if realized:
        ax.plot(
            *zip(*realized, strict=True), "o-", label="realized (matured cohort)", color="tab:green"
        )
    ax.plot(
        days, [r.floor.get(metric, math.nan) for r in reports], "--", color="tab:red", label="floor"
    )
    alerts = [r.day for r in reports if "performance" in r.alerts]
    for day in alerts:  # the x axis is categorical (one tick per day): mark by position
        ax.axvline(days.index(day), color="tab:red", alpha=0.2)
    ax.set_title(metric)
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", labelrotation=60, labelsize=6)
    return _png(fig)


def _drift_plot(reports: Sequence[DayReport]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3))
    days = [r.day for r in reports]
    worst = [
        max(
            (
                d["value"] / d["threshold"]
                for d in r.drift
                if d.get("signal") != "prediction" and d.get("threshold")
            ),
            default=math.nan,
        )
        for r in reports
    ]
    score = [
        next(
            (
                d["value"] / d["threshold"]
                for d in r.drift
                if d.get("signal") == "prediction" and d.get("threshold")
            ),
            math.nan,
        )
        for r in reports
    ]
    emb = [
        r.embedding["mmd2"] / r.embedding["threshold"]
        if r.embedding and r.embedding.get("threshold")
        else math.nan
        for r in reports
    ]
    ax.plot(days, worst, label="data: worst feature")
    ax.plot(days, score, label="prediction")
    ax.plot(days, emb, label="embedding (MMD)")
    ax.axhline(1.0, color="tab:red", linestyle="--", label="threshold")
    ax.set_ylabel("effect / threshold")
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", labelrotation=60, labelsize=6)
    return _png(fig)


def write_report(reports: Sequence[DayReport], path: str | Path) -> Path:
    """Write the report of ``reports`` (one model's days, oldest first) to ``path``."""
    if not reports:
        raise ValueError("no monitoring days to report on")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    env = Environment(autoescape=select_autoescape(default=True))
    template = env.from_string(
        files("couturier.monitoring").joinpath("templates/report.html.j2").read_text()
    )
    latest = reports[-1]
    top = sorted(
        (d for d in latest.drift if d.get("threshold")),
        key=lambda d: d["value"] / d["threshold"],
        reverse=True,
    )[:12]
    html = template.render(
        model=latest.model,
        reports=list(reversed(reports)),
        latest=asdict(latest),
        top_drift=top,
        plots={
            "recall": _performance_plot(reports, "recall_at_1pct_fpr"),
            "pr_auc": _performance_plot(reports, "pr_auc"),
            "drift": _drift_plot(reports),
        },
    )
    path.write_text(html)
    return path
