"""Monthly cost against peak rate for each option, the break-evens and the peak marked."""

from __future__ import annotations

from pathlib import Path

from couturier.plan._plan import Plan

__all__ = ["write_plot"]

# (colour, line style) per option, in the plan's order: EKS on-demand, EKS + Spot, SageMaker
_STYLES = (("tab:blue", "-"), ("tab:green", "--"), ("tab:orange", "-"))


def write_plot(plan: Plan, path: Path) -> Path:
    """Write ``plan``'s cost curves as a PNG at ``path`` (its folder is created)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    points = [b.rps for b in plan.break_evens if b.rps is not None]
    end = max([2 * plan.request.peak_rps, *(1.5 * r for r in points)])
    keep = [i for i, r in enumerate(plan.curve_rps) if r <= end] or [0]
    xs = [0.0, *(plan.curve_rps[i] for i in keep)]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for (colour, style), (name, totals) in zip(_STYLES, plan.curves.items(), strict=False):
        # k replicas cover ((k-1) * step, k * step]: a step drawn at the interval's right end
        ys = [totals[0], *(totals[i] for i in keep)]
        ax.step(xs, ys, where="pre", color=colour, linestyle=style, label=name)
    top = ax.get_ylim()[1]
    marks = [(b.rps, b.cheaper_above) for b in plan.break_evens if b.rps is not None]
    for i, (rps, above) in enumerate(marks):
        ax.axvline(rps, color="grey", linestyle=":", linewidth=1)
        ax.annotate(
            f"break-even {rps:,.0f} req/s:\n{above} cheaper above",
            (rps, top),
            textcoords="offset points",
            xytext=(4, -22 - 24 * i),
            fontsize=7,
            color="dimgrey",
        )
    ax.axvline(plan.request.peak_rps, color="black", linewidth=1)
    ax.annotate(
        f"peak {plan.request.peak_rps:,.0f} req/s",
        (plan.request.peak_rps, 0),
        textcoords="offset points",
        xytext=(4, 4),
        fontsize=7,
    )
    w = plan.capacity.workload
    ax.set(
        xlabel="peak rate (requests/s)",
        ylabel="USD per month (priced lines)",
        title=f"{w.route} at p99 <= {plan.request.p99_ms:g} ms",
        xlim=(0, end),
        ylim=(0, None),
    )
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
