"""ROC, precision-recall and calibration plots, as PNG files for runs and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

__all__ = ["plot_curves"]


def plot_curves(y_true: Any, score: Any, folder: Path, title: str = "") -> list[Path]:
    """Write ``roc.png``, ``pr.png`` and ``calibration.png`` into ``folder``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    y = np.asarray(y_true).astype(int)
    s = np.asarray(score, dtype=float)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []

    fpr, tpr, _ = roc_curve(y, s)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set(xlabel="false-positive rate", ylabel="recall", title=f"ROC {title}".strip())
    paths.append(_save(fig, folder / "roc.png"))

    precision, recall, _ = precision_recall_curve(y, s)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(recall, precision)
    ax.axhline(y.mean(), linestyle=":", color="grey")
    ax.set(xlabel="recall", ylabel="precision", title=f"precision-recall {title}".strip())
    paths.append(_save(fig, folder / "pr.png"))

    edges = np.linspace(0, 1, 11)
    idx = np.clip(np.digitize(s, edges[1:-1]), 0, 9)
    mean_p = [s[idx == b].mean() for b in range(10) if (idx == b).any()]
    rate = [y[idx == b].mean() for b in range(10) if (idx == b).any()]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.plot(mean_p, rate, marker="o")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed rate",
        title=f"calibration {title}".strip(),
    )
    paths.append(_save(fig, folder / "calibration.png"))
    return paths


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
