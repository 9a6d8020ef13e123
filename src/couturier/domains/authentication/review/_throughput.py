"""The authentication team's page: verdicts per reviewer per day, agreement with the model and
between reviewers, and how old the queue is, with plots (matplotlib, as inline SVG).

*Agreement with the model*: the verdict against the model's leaning when it scored the listing
(counterfeit when its probability was at least 0.5). *Between reviewers*: of the listings with
two verdicts or more (the console's and the label store's: audits get a blind second opinion),
the share where all agree, and the disagreements still waiting for a senior.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from couturier.domains.authentication.review._store import Reviewer, ReviewStore

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from couturier.domains.authentication.review._queue import ReviewQueue

__all__ = ["throughput"]

DAYS = 14


def throughput(store: ReviewStore, queue: ReviewQueue, viewer: Reviewer) -> dict[str, Any]:
    names = {r.id: r.name for r in store.reviewers()}
    verdicts = store.verdicts()
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    agree: dict[str, list[bool]] = defaultdict(list)
    for v in verdicts:
        name = names.get(v.reviewer_id, f"#{v.reviewer_id}")
        per_day[v.recorded_at[:10]][name] += 1
        if v.model_probability is not None:
            leaning = "counterfeit" if v.model_probability >= 0.5 else "authentic"
            agree[name].append(v.verdict == leaning)
    days = sorted(per_day)[-DAYS:]
    people = sorted({n for d in days for n in per_day[d]})
    multiple = [{s.verdict for s in said} for _, said in queue.known.judged() if len(said) > 1]
    everyone = Reviewer(-1, "", "senior")  # sees every open case
    open_cases = queue.cases(everyone).cases
    ages = np.array([c.age_h for c in open_cases])
    with_model = [ok for oks in agree.values() for ok in oks]
    return {
        "days": days,
        "people": people,
        "per_day": {d: dict(per_day[d]) for d in days},
        "model_agreement": {n: (float(np.mean(v)), len(v)) for n, v in sorted(agree.items())},
        "model_agreement_all": (float(np.mean(with_model)), len(with_model))
        if with_model
        else None,
        "reviewer_agreement": (
            (float(np.mean([len(s) == 1 for s in multiple])), len(multiple)) if multiple else None
        ),
        "disagreements_open": sum(c.kind == "disagreement" for c in open_cases),
        "open": len(open_cases),
        "age_p50_h": float(np.percentile(ages, 50)) if len(ages) else None,
        "age_p90_h": float(np.percentile(ages, 90)) if len(ages) else None,
        "overdue": int(sum(c.overdue for c in open_cases)),
        "sla_h": queue.sla_h,
        "plots": _plots(days, people, per_day, agree, ages, queue.sla_h),
        "viewer": viewer.name,
    }


def _plots(
    days: list[str],
    people: list[str],
    per_day: dict[str, Counter[str]],
    agree: dict[str, list[bool]],
    ages: np.ndarray,
    sla_h: float,
) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    plots = {}
    fig = Figure(figsize=(6.4, 2.8))
    ax = fig.subplots()
    bottom = np.zeros(len(days))
    for person in people:
        counts = np.array([per_day[d][person] for d in days], dtype=float)
        ax.bar([d[5:] for d in days], counts, bottom=bottom, label=person)
        bottom += counts
    ax.set_ylabel("verdicts")
    ax.set_title("verdicts per reviewer per day")
    if people:
        ax.legend(fontsize=7, loc="upper left")
    plots["per_day"] = _svg(fig)

    fig = Figure(figsize=(6.4, 2.4))
    ax = fig.subplots()
    if len(ages):
        ax.hist(ages, bins=30, color="#4c72b0")
    ax.axvline(sla_h, color="#c44e52", linestyle="--", label=f"target {sla_h:.0f} h")
    ax.set_xlabel("hours since the model's decision")
    ax.set_ylabel("open cases")
    ax.set_title("queue age")
    ax.legend(fontsize=7)
    plots["age"] = _svg(fig)

    fig = Figure(figsize=(6.4, 2.4))
    ax = fig.subplots()
    names = sorted(agree)
    ax.bar(names, [float(np.mean(agree[n])) for n in names], color="#55a868")
    ax.set_ylim(0, 1)
    ax.set_ylabel("share agreeing")
    ax.set_title("agreement with the model's leaning, by reviewer")
    plots["model"] = _svg(fig)
    return plots


def _svg(fig: Figure) -> str:
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg") :]  # no XML prologue inside the page
