"""The verdict form: what a reviewer sent, checked field by field before anything is stored.

The report is written in the schema the simulator's experts write (``control_points``: one row
per checked point, ``pass`` or ``fail`` and the measurement where the point has one), and the
rows are put through the very rules training applies to every report
(:func:`couturier.domains.authentication.labels.check_reports`), so a verdict the console
accepts is never refused later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from couturier.domains.authentication.labels import check_reports
from couturier.errors import InvalidInputError
from couturier.marketplace import CONTROL_POINTS, RESULTS, control_point

__all__ = ["MAX_NOTE", "VERDICTS", "VerdictForm", "parse_verdict"]

VERDICTS: tuple[str, ...] = ("authentic", "counterfeit")
MAX_NOTE = 2000
#: form fields that are not part of the report
_PLAIN = {"verdict", "note", "lease", "csrf", "listing_id", "action"}


@dataclass(frozen=True)
class VerdictForm:
    verdict: str
    note: str
    report: list[dict[str, Any]]  # control_point, result, measurement (None: not measured)


def parse_verdict(form: Mapping[str, Any]) -> VerdictForm:
    """The verdict and report in ``form``, or an :class:`InvalidInputError` naming the field,
    the rule and the fix."""
    for key in form:
        kind, _, name = key.partition(".")
        if key in _PLAIN:
            continue
        if kind not in ("point", "measure") or control_point(name) is None:
            known = ", ".join(p.name for p in CONTROL_POINTS)
            raise InvalidInputError(
                f"the form names an unknown control point or field {key!r}; the control points "
                f"are: {known}. Reload the case page and send its own form.",
                field=key,
            )
    verdict = str(form.get("verdict", "")).strip()
    if verdict not in VERDICTS:
        raise InvalidInputError(
            f"the verdict is {verdict or 'missing'!r}; choose authentic (key a) or counterfeit "
            "(key c) before saving",
            field="verdict",
        )
    note = str(form.get("note", "")).strip()
    if len(note) > MAX_NOTE:
        raise InvalidInputError(
            f"the note has {len(note)} characters; at most {MAX_NOTE}: shorten it",
            field="note",
        )
    report = [row for p in CONTROL_POINTS if (row := _point(form, p.name)) is not None]
    _same_rules_as_training(report)
    return VerdictForm(verdict, note, report)


def _point(form: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    point = control_point(name)
    assert point is not None  # the catalogue's own names
    result = str(form.get(f"point.{name}", "")).strip()
    raw = str(form.get(f"measure.{name}", "")).strip()
    if result and result not in RESULTS:
        raise InvalidInputError(
            f"{point.label}: result {result!r} is not one of {', '.join(RESULTS)} (or leave it "
            "unchecked)",
            field=f"point.{name}",
        )
    if not raw:
        return {"control_point": name, "result": result, "measurement": None} if result else None
    if not point.measurable:
        raise InvalidInputError(
            f"{point.label} is pass/fail only; it takes no measurement: clear the field",
            field=f"measure.{name}",
        )
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        raise InvalidInputError(
            f"{point.label}: {raw!r} is not a number; write the measurement in {point.unit}, "
            "e.g. 12.5",
            field=f"measure.{name}",
        ) from None
    problem = point.check_measurement(value)
    if problem:
        raise InvalidInputError(f"{problem}: check the reading", field=f"measure.{name}")
    if not result:
        raise InvalidInputError(
            f"{point.label} has a measurement but no result: mark it pass or fail",
            field=f"point.{name}",
        )
    return {"control_point": name, "result": result, "measurement": round(value, point.decimals)}


def _same_rules_as_training(report: list[dict[str, Any]]) -> None:
    """Run the label store's report rules on the rows (a belt to the checks above)."""
    if not report:
        return
    rows = pd.DataFrame(report).assign(check_id=range(len(report)), verdict_id=0, listing_id=0)
    rows["measurement"] = rows["measurement"].astype("float64")
    _, refused = check_reports(rows, pd.DataFrame({"verdict_id": [0], "listing_id": [0]}), [0])
    if refused:
        raise InvalidInputError(refused[0].rule, field="report")
