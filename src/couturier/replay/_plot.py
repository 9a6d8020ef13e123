"""The replay's plot: quality per day (served answers against the truth), alerts and
promotions marked, the drift's start shaded."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_replays"]


def plot_replays(
    results: Sequence[Any], path: str | Path, *, metric: str = "recall_at_1pct_fpr"
) -> Path:
    """One line per replay (its policy), ``metric`` over a trailing 3-day window per day."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for res in results:
        days = [d["index"] for d in res.daily]
        values = [d.get(f"{metric}_3d", d.get(metric, math.nan)) for d in res.daily]
        line = ax.plot(days, values, label=f"{res.config['policy']}")[0]
        for d in res.daily:
            if d["alerts"]:
                ax.plot(d["index"], d.get(f"{metric}_3d", math.nan), "x", color=line.get_color())
            if d["promoted"]:
                ax.axvline(d["index"] + 1, color=line.get_color(), linestyle=":", alpha=0.7)
    first = results[0]
    ax.axvspan(
        first.config["drift_day"],
        first.config["days"],
        color="tab:red",
        alpha=0.06,
        label="scenario active",
    )
    ax.set_xlabel("replay day")
    ax.set_ylabel(f"{metric} (trailing 3 days)")
    ax.set_title(f"replay: {first.config['scenario']} (x: alert, dotted: promotion)")
    ax.legend(fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
