"""The model card: what the model is for, what it was trained on, how it does, where it fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from couturier.evaluation import Evaluation
from couturier.registry.types import GateVerdict

__all__ = ["ModelCard", "render_card"]


@dataclass
class ModelCard:
    """What a registered version is for and how it did; rendered to Markdown and HTML.

    ``verdict`` and ``version`` are filled in by the registry at registration. The card's
    comparison table shows each gate check's status (passed, failed or not judged) and lists
    the checks that were not judged, so a reader sees what the gate did not look at.
    """

    name: str
    intended_use: str
    limitations: list[str]
    evaluation: Evaluation
    lineage: dict[str, Any]
    verdict: GateVerdict | None = None
    version: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _template(name: str) -> str:
    return (files("couturier.registry") / "templates" / name).read_text()


def render_card(card: ModelCard, folder: Path, metric: str = "pr_auc") -> list[Path]:
    """Write ``model_card.md`` and ``model_card.html`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    slices = sorted(card.evaluation.slices.items())
    md_env = Environment(autoescape=False, keep_trailing_newline=True)  # Markdown: no escaping
    html_env = Environment(autoescape=select_autoescape(default=True))
    md = md_env.from_string(_template("model_card.md.j2")).render(
        c=card, slices=slices, metric=metric
    )
    html = html_env.from_string(_template("model_card.html.j2")).render(
        c=card, slices=slices, metric=metric
    )
    paths = [folder / "model_card.md", folder / "model_card.html"]
    paths[0].write_text(md)
    paths[1].write_text(html)
    return paths
