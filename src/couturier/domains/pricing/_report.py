"""The pricing report: one self-contained HTML file per recipe run.

The headline numbers; the interval's coverage by segment (house, category, price band,
condition) and week by week, against the nominal level; its width, and the median beside the
sale prices; the sale probability's reliability per horizon; where the simulator's truth is
there, the expected revenue at the suggested price and at the seller's own price against the
oracle price; and one listing's demand curve. Plots are embedded PNGs; everything else is
escaped (Jinja2 autoescape), so a segment's name cannot inject markup.
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

from couturier.domains.pricing._evaluate import MIN_SEGMENT_SALES, ValueScores, coverage_table
from couturier.domains.pricing._recipe import MIN_COVERAGE, Inputs, PricingFit
from couturier.marketplace import sale_probability

__all__ = ["reliability_bins", "render", "segment_rows", "write_report"]

#: the horizon the suggestion maximizes revenue over, as in the recipe's revenue metrics
_HORIZON = 30
_BLUE, _RED, _GREY = "#4682b4", "#c0392b", "#bbbbbb"
_FACTS = (
    ("listing", "listing_id"),
    ("house", "brand_id"),
    ("category", "category"),
    ("condition", "condition"),
)
Plot = tuple[str, str]  # (title, base64 PNG)


def reliability_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Equal-width bins of the predicted probability ``p``: each non-empty bin's range, size,
    mean prediction and realized rate of ``y``.

    >>> [(b["n"], b["rate"]) for b in reliability_bins([0, 1, 1], [0.05, 0.95, 1.0], bins=2)]
    [(1, 0.0), (2, 1.0)]
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    out: list[dict[str, float]] = []
    for b in range(bins):
        mask = idx == b
        if mask.any():
            out.append(
                {
                    "lo": float(edges[b]),
                    "hi": float(edges[b + 1]),
                    "n": int(mask.sum()),
                    "mean_p": float(p[mask].mean()),
                    "rate": float(y[mask].mean()),
                }
            )
    return out


def segment_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """:func:`coverage_table`'s rows for the page: ``judged`` when the segment has enough
    sales to be judged, ``low`` when its coverage is below the recipe's minimum."""
    return [
        {
            "segment": str(r["segment"]),
            "value": str(r["value"]),
            "n": int(r["n"]),
            "coverage": f"{r['coverage']:.3f}",
            "width": f"{r['width']:.3f}",
            "judged": int(r["n"]) >= MIN_SEGMENT_SALES,
            "low": float(r["coverage"]) < MIN_COVERAGE,
        }
        for r in table.to_dict("records")
    ]


def render(**context: Any) -> str:
    """The page, from ``templates/report.html.j2``, every value escaped."""
    template = files("couturier.domains.pricing") / "templates" / "report.html.j2"
    env = Environment(autoescape=select_autoescape(default=True))
    return env.from_string(template.read_text()).render(**context)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _headline(fit: PricingFit, n_sale_holdout: int) -> dict[str, str]:
    m, params, data = fit.metrics, fit.pricer.params, fit.data
    lowest = m.get("segment_coverage_min", float("nan"))
    rows = {
        f"coverage of the {params.confidence:.0%} interval": f"{m['coverage']:.3f}",
        f"lowest coverage of a segment with {MIN_SEGMENT_SALES}+ sales": (
            "no segment that large" if np.isnan(lowest) else f"{lowest:.3f}"
        ),
        "median relative width, (upper - lower) / median": f"{m['interval_width']:.3f}",
        "MdAPE of the median; of the house x product x condition median": (
            f"{m['mdape']:.3f}; {m['baseline_mdape']:.3f}"
        ),
    }
    for h in params.horizons:
        ece, rate = m[f"sale_{h}d_ece"], m[f"sale_{h}d_rate"]
        rows[f"sale within {h} days: ECE; realized rate"] = f"{ece:.4f}; {rate:.3f}"
    if "revenue_vs_oracle" in m:
        rows["expected revenue at the suggested / at the oracle price: mean; total"] = (
            f"{m['revenue_vs_oracle']:.3f}; {m['revenue_vs_oracle_total']:.3f}"
        )
        rows["the same at the seller's own price: mean"] = f"{m['asking_revenue_vs_oracle']:.3f}"
    rows["holdout: listed from, to the cut-off"] = (
        f"{data.bounds[2]:%Y-%m-%d %H:%M}, {data.cutoff:%Y-%m-%d %H:%M}"
    )
    counts = {**fit.details.get("examples", {}), "sale_holdout": n_sale_holdout}
    rows["examples"] = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in counts.items())
    return rows


def _segment_plots(table: pd.DataFrame, nominal: float) -> list[Plot]:
    plt, out = _pyplot(), []
    for name, part in table.groupby("segment", sort=False):
        fig, ax = plt.subplots(figsize=(5.5, 1.0 + 0.22 * len(part)))
        colors = [
            _GREY if n < MIN_SEGMENT_SALES else _RED if c < MIN_COVERAGE else _BLUE
            for n, c in zip(part["n"], part["coverage"], strict=True)
        ]
        labels = part["value"].astype(str).str.replace("$", r"\$", regex=False)  # no mathtext
        ax.barh(labels, part["coverage"], color=colors)
        ax.axvline(nominal, color="k", linestyle="--")
        ax.set(xlim=(min(0.5, part["coverage"].min() - 0.05), 1.0), xlabel="coverage")
        title = f"by {name} (dashed: nominal {nominal:.0%}; grey: under {MIN_SEGMENT_SALES} sales)"
        ax.set_title(title, fontsize=8)
        ax.invert_yaxis()
        out.append((f"coverage by {name}", _png(fig)))
    return out


def _weekly_plot(weeks: list[list[Any]], nominal: float) -> list[Plot]:
    if not weeks:
        return []
    plt = _pyplot()
    at = np.arange(len(weeks))
    mean = [float(w[1]) for w in weeks]
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    sales = ax.twinx()
    sales.bar(at, [int(w[2]) for w in weeks], color=_GREY, alpha=0.4)
    sales.set_ylabel("sales")
    ax.set_zorder(sales.get_zorder() + 1)  # the coverage line over the bars
    ax.patch.set_visible(False)
    ax.plot(at, mean, marker="o", color=_BLUE)
    ax.axhline(nominal, color="k", linestyle="--", label=f"nominal {nominal:.0%}")
    ax.set_xticks(at, [str(w[0])[:10] for w in weeks], rotation=60, fontsize=7)
    ax.set(ylim=(min(0.5, min(mean) - 0.05), 1.0), ylabel="coverage", xlabel="week listed")
    ax.legend(fontsize=7, loc="lower left")
    return [("coverage by week", _png(fig))]


def _width_plots(scores: ValueScores) -> list[Plot]:
    plt = _pyplot()
    width = (scores.upper - scores.lower) / scores.median
    fig, ax = plt.subplots(figsize=(4.6, 4))
    top = max(float(np.max(width, initial=0.0)), 0.01) * 1.05  # a flat width is one bar
    ax.hist(width, bins=40, range=(0.0, top), color=_BLUE)
    ax.axvline(float(np.median(width)), color="k", linestyle="--", label="median")
    ax.set(xlabel="(upper - lower) / median", ylabel="sales", title="interval width")
    ax.legend(fontsize=7)
    out = [("interval width", _png(fig))]
    pick = np.random.default_rng(0).permutation(len(scores.sale))[:300]
    sale, med, covered = scores.sale[pick], scores.median[pick], scores.covered[pick]
    err = np.vstack([med - scores.lower[pick], scores.upper[pick] - med])
    fig, ax = plt.subplots(figsize=(4.6, 4))
    for hit, color, label in ((True, _BLUE, "covered"), (False, _RED, "missed")):
        if (m := covered == hit).any():
            ax.errorbar(
                sale[m], med[m], yerr=err[:, m], fmt="o", ms=2, lw=0.5, color=color, label=label
            )
    if len(sale):
        ends = [float(sale.min()), float(sale.max())]
        ax.plot(ends, ends, linestyle=":", color="grey")
    ax.set(xscale="log", yscale="log", xlabel="sale price (EUR)", ylabel="median, interval (EUR)")
    for axis in (ax.xaxis, ax.yaxis):  # labelled minor ticks overlap on a narrow range
        axis.set_minor_formatter(plt.NullFormatter())
    ax.set_title(f"{len(pick)} holdout sales", fontsize=9)
    ax.legend(fontsize=7)
    out.append(("sale price against the predicted median", _png(fig)))
    return out


def _calibration(
    fit: PricingFit, f: pd.DataFrame, inp: Inputs, sale: np.ndarray
) -> tuple[list[Plot], list[tuple[int, list[dict[str, float]]]]]:
    horizons = fit.pricer.params.horizons
    rel = inp.relative(f["asking_price"].to_numpy(float))
    size = (4.2 * len(horizons), 4)
    fig, axes = _pyplot().subplots(1, len(horizons), figsize=size, squeeze=False)
    tables = []
    for ax, h in zip(axes[0], horizons, strict=True):
        p = fit.pricer.sale_probability(inp.x[sale], rel[sale], h)
        bins = reliability_bins(f.loc[sale, f"sold_{h}d"].to_numpy(float), p)
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
        ax.plot([b["mean_p"] for b in bins], [b["rate"] for b in bins], marker="o", color=_BLUE)
        for b in bins:  # each bin's size beside its point
            at = (b["mean_p"], b["rate"])
            ax.annotate(f"{b['n']:.0f}", at, fontsize=6, xytext=(3, -9), textcoords="offset points")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=f"predicted P(sold in {h} days)", ylabel="realized")
        ax.set_title(f"{h} days: ECE {fit.metrics.get(f'sale_{h}d_ece', np.nan):.4f}", fontsize=9)
        tables.append((h, bins))
    return [("sale-probability reliability", _png(fig))], tables


def _revenue_plot(fit: PricingFit) -> list[Plot]:
    """The recipe's per-listing revenue ratios (``fit.revenue``), where the truth is there."""
    ratios = fit.revenue
    if not ratios or not len(ratios["suggested price"]):
        return []
    edges = np.linspace(0.0, max(1.0, *(float(r.max()) for r in ratios.values())), 41)
    fig, axes = _pyplot().subplots(1, 2, figsize=(8.6, 3.6), sharex=True, sharey=True)
    for ax, (label, r) in zip(axes, ratios.items(), strict=True):
        ax.hist(r, bins=edges, color=_BLUE)
        ax.axvline(float(r.mean()), color="k", linestyle="--", label=f"mean {r.mean():.3f}")
        ax.set(xlabel="expected revenue / at the oracle price", ylabel="listings")
        ax.set_title(f"at the {label}")
        ax.legend(fontsize=7, loc="upper left")
    return [("revenue against the oracle", _png(fig))]


def _example(fit: PricingFit, f: pd.DataFrame, inp: Inputs) -> tuple[list[Plot], dict[str, str]]:
    """A holdout listing of typical reference price: the model's demand curve over the
    suggestion's price grid (and the simulator's, where its truth is there)."""
    truth = fit.data.has_truth
    rows = np.flatnonzero(f["market_value"].notna()) if truth else np.arange(len(f))
    if not len(rows):
        return [], {}
    i = int(rows[np.argsort(f["reference_price"].to_numpy(float)[rows])[len(rows) // 2]])
    one, row = np.arange(len(f)) == i, f.iloc[i]
    x, index, log_ref, category = inp.take(one)
    asking = np.array([float(row["asking_price"])])
    sug = fit.pricer.suggest(x, index, log_ref, category, _HORIZON, asking=asking)
    prices, p = (a[0] for a in fit.pricer.curve(x, index, log_ref, sug.median, _HORIZON))
    marks = {"suggested": float(sug.price[0]), "seller's": float(asking[0])}
    if truth:
        marks["oracle"] = float(row["oracle_price"])
    fig, axes = _pyplot().subplots(1, 2, figsize=(9, 3.8), sharex=True)
    for ax, y, label in (
        (axes[0], p, "P(sold in 30 days)"),
        (axes[1], prices * p, "expected revenue (EUR)"),
    ):
        ax.plot(prices, y, color=_BLUE, label="model")
        for (name, price), style in zip(marks.items(), ("-", "--", ":"), strict=False):
            ax.axvline(price, color="k", linestyle=style, lw=1, label=f"{name} {price:,.0f}")
        ax.set(xlabel="price (EUR)", ylabel=label)
    if truth:
        true_p = sale_probability(prices, float(row["market_value"]), float(row["demand_30d"]))
        axes[0].plot(prices, true_p, color=_RED, linestyle="--", label="simulator")
        axes[1].plot(prices, prices * true_p, color=_RED, linestyle="--", label="simulator")
    axes[0].legend(fontsize=7)
    facts = {k: str(row[c]) for k, c in _FACTS}
    marks["reference"] = float(row["reference_price"])
    facts |= {f"{k} price": f"{v:,.0f} EUR" for k, v in marks.items()}
    return [("one listing's demand curve", _png(fig))], facts


def write_report(fit: PricingFit, *, version: int, folder: Path) -> Path:
    """Write ``pricing-v<version>.html`` into ``folder`` and return its path."""
    f, params = fit.data.frame, fit.pricer.params
    # the holdout listings the recipe scored (those with a reference price), and their inputs
    known = fit.data.part("holdout").to_numpy() & f["reference_price"].notna().to_numpy()
    hold = f[known].reset_index(drop=True)
    inp = fit.inputs.subset(known)
    sale = fit.data.sale_examples.to_numpy()[known]
    table = coverage_table(fit.scores)
    reliability_plots, reliability = _calibration(fit, hold, inp, sale)
    example_plots, example = _example(fit, hold, inp)
    html = render(
        version=version,
        nominal=f"{params.confidence:.0%}",
        minimum=MIN_COVERAGE,
        min_sales=MIN_SEGMENT_SALES,
        headline=_headline(fit, int(sale.sum())),
        segments=segment_rows(table),
        plots={
            "segments": _segment_plots(table, params.confidence),
            "weeks": _weekly_plot(fit.details.get("coverage_by_week", []), params.confidence),
            "width": _width_plots(fit.scores),
            "reliability": reliability_plots,
            "revenue": _revenue_plot(fit),
            "example": example_plots,
        },
        reliability=reliability,
        example=example,
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"pricing-v{version}.html"
    path.write_text(html)
    return path
