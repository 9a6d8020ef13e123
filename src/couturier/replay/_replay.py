"""The time-travel replay: simulated days through the real stack, under a retraining policy.

One replay is one fresh ``$COUTURIER_HOME`` (features, registry, prediction log, monitoring,
Dagster instance) and one simulated marketplace whose scenario starts ``drift_day`` days into
the replay. The first champion is trained on the ``warmup_days`` before the replay, through the
domain's retraining job. Then, for each simulated day:

1. the feature job materializes the online store up to the day's end (the marketplace seen as
   of then: ``Marketplace.at``);
2. every request the day's events make goes to a real server (``create_app`` under uvicorn)
   whose clock is the simulated time, so the prediction log holds simulated times;
3. the monitoring job judges the day; labels are the verdicts that had arrived by its end;
4. the policy runs: ``never`` retrains nothing, ``scheduled`` runs each retraining whose cron
   matches the day, ``triggered`` runs the on-alert retrainings the sensor's rule asks for.
   Every retraining goes through the gate; the server swaps to a promoted version before the
   next day starts.

The day's quality is measured on the answers actually served, against the simulator's truth.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import requests

from couturier.domain import Domain
from couturier.errors import ConflictError, InvalidParameterError
from couturier.marketplace import SimulationConfig, simulate
from couturier.monitoring import MonitoringStore
from couturier.pipelines import CouturierResource, local_instance, retrain_requests, run_job
from couturier.registry import ModelRegistry
from couturier.replay._server import SimulatedClock, replay_server, wait_for_champion
from couturier.replay._spec import Answer, Traffic
from couturier.settings import Settings

__all__ = ["POLICIES", "ReplayConfig", "run_replay"]

Policy = Literal["never", "scheduled", "triggered"]
POLICIES: tuple[str, ...] = ("never", "scheduled", "triggered")
#: a day's ~6 counterfeits say little: quality is also reported over the trailing days
TRAILING_DAYS = 3


@dataclass(frozen=True)
class ReplayConfig:
    scenario: str = "none"
    days: int = 30
    policy: Policy = "triggered"
    warmup_days: int = 45
    listings_per_day: int = 150
    drift_day: int = 10  # after the first champion's reference window (7 days) and 3 more
    seed: int = 7

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise InvalidParameterError(
                f"policy {self.policy!r} is unknown; accepted: {', '.join(POLICIES)}",
                field="policy",
            )
        if self.days < 1 or self.warmup_days < 7 or self.listings_per_day < 10:
            raise InvalidParameterError(
                f"days={self.days}, warmup_days={self.warmup_days}, listings_per_day="
                f"{self.listings_per_day}: need days >= 1, warmup_days >= 7, "
                "listings_per_day >= 10",
                field="days",
            )


@dataclass
class ReplayResult:
    config: dict[str, Any]
    start: str
    drift_starts: str
    daily: list[dict[str, Any]] = field(default_factory=list)
    promotions: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _due(cron: str, day: datetime) -> bool:
    """Whether a cron's day fields (day of month, day of week) match ``day``."""
    _, _, dom, _, dow = cron.split()
    dom_ok = dom == "*" or int(dom) == day.day
    dow_ok = dow == "*" or int(dow) % 7 == day.isoweekday() % 7
    return dom_ok and dow_ok


class _Replay:
    """The loop's state: settings, the domain's jobs, the server, the results."""

    def __init__(
        self,
        config: ReplayConfig,
        domain: Domain,
        traffic: Traffic,
        home: Path,
        say: Callable[[str], None],
    ) -> None:
        self.config, self.domain, self.traffic, self.say = config, domain, traffic, say
        self.settings = Settings.load(home=home)
        self.instance = local_instance(self.settings)
        self.market_path = ""
        self.cursor = ""
        self.answers: list[list[Answer]] = []  # per day, for the trailing windows

    def job(self, kind: str, as_of: datetime, partition: str | None = None) -> Any:
        resource = CouturierResource(
            home=str(self.settings.paths.home),
            marketplace=self.market_path,
            as_of=as_of.isoformat(),
        )
        return run_job(
            self.domain, kind, resource=resource, instance=self.instance, partition=partition
        )

    def retrain(self, name: str, as_of: datetime, app: Any, why: str) -> dict[str, Any]:
        import dagster as dg

        t = time.perf_counter()
        result = self.job(f"retrain:{name}", as_of)
        report = result.asset_value(dg.AssetKey([self.domain.name, f"{name}_model"]))
        said = result.asset_value(dg.AssetKey([self.domain.name, f"{name}_promotion"]))
        registry = ModelRegistry(self.settings)
        try:
            champion = registry.alias_version(self.traffic.model, "champion")
        finally:
            registry.close()
        if app is not None and champion is not None:
            wait_for_champion(app, self.traffic.model, champion)
        event = {
            "day": as_of.date().isoformat(),
            "retrain": name,
            "why": why,
            "version": report.version,
            "gate_passed": report.gate_passed,
            "champion": champion,
            "promoted": champion == report.version,
            "outcome": said,
            "seconds": round(time.perf_counter() - t, 1),
        }
        self.say(f"  retrain {name} ({why}): {said}")
        return event


def run_replay(
    config: ReplayConfig,
    domain: Domain,
    out: str | Path,
    *,
    overwrite: bool = False,
    say: Callable[[str], None] = lambda _: None,
) -> ReplayResult:
    """Replay ``config.days`` simulated days of ``domain``; everything is written under ``out``."""
    if domain.traffic is None:
        raise InvalidParameterError(
            f"domain {domain.name!r} declares no traffic; a replay needs Domain.traffic",
            field="domain",
        )
    reference = max((w.reference_days for w in domain.watches), default=0)
    if config.scenario != "none" and config.drift_day <= reference:
        raise InvalidParameterError(
            f"drift_day={config.drift_day}: the scenario would start inside the first "
            f"champion's {reference}-day reference window, and become its normal; start it "
            f"after, e.g. --drift-day {reference + 3}",
            field="drift_day",
        )
    started = time.perf_counter()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConflictError(
                f"{out} already holds a replay; a replay starts from an empty folder (its "
                "registry, prediction log and monitoring are its own): pass overwrite "
                "(--overwrite) or choose another --out",
                path=str(out),
            )
        shutil.rmtree(out)
    state = _Replay(config, domain, domain.traffic, out / "home", say)
    total_days = config.warmup_days + config.days
    sim = SimulationConfig.of(
        listings=config.listings_per_day * total_days,
        days=float(total_days),
        seed=config.seed,
        scenario=config.scenario,
        scenario_start_day=float(config.warmup_days + config.drift_day),
    )
    say(f"simulating {sim.listings} listings over {total_days} days ({config.scenario})")
    market = simulate(sim, out / "marketplace", overwrite=True)
    state.market_path = str(market.path)
    t0 = sim.start + timedelta(days=config.warmup_days)
    result = ReplayResult(
        config=asdict(config),
        start=t0.date().isoformat(),
        drift_starts=(t0 + timedelta(days=config.drift_day)).date().isoformat(),
    )
    say(f"training the first champion on the {config.warmup_days} days before {t0.date()}")
    for r in domain.cadence.retrain:
        result.promotions.append(state.retrain(r.name, t0, None, "first champion"))
    clock = SimulatedClock(t0)
    with replay_server(state.settings, domain, clock) as (url, app), requests.Session() as http:
        for i in range(config.days):
            result.daily.append(
                _day(state, market, url, app, http, clock, t0 + timedelta(days=i), result)
            )
    result.seconds = round(time.perf_counter() - started, 1)
    return result


def _send(
    http: requests.Session,
    url: str,
    clock: SimulatedClock,
    traffic: Traffic,
    market: Any,
    start: datetime,
    end: datetime,
) -> list[Answer]:
    answers = []
    for req in traffic.requests(market, start, end):
        clock.now = req.at
        r = http.post(url + req.path, json=req.json, timeout=60)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        answers.append(Answer(req, r.status_code, body))
    return answers


def _day(
    state: _Replay,
    market: Any,
    url: str,
    app: Any,
    http: requests.Session,
    clock: SimulatedClock,
    start: datetime,
    result: ReplayResult,
) -> dict[str, Any]:
    t = time.perf_counter()
    end = start + timedelta(days=1)
    state.job("materialize", end)
    seen = market.at(end)
    answers = _send(http, url, clock, state.traffic, seen, start, end)
    state.answers.append(answers)
    pooled = [a for day in state.answers[-TRAILING_DAYS:] for a in day]
    trailing = {
        f"{k}_{TRAILING_DAYS}d": v
        for k, v in state.traffic.outcome(seen, pooled).items()
        if k in ("pr_auc", "recall_at_1pct_fpr", "expected_cost_per_1000")
    }
    state.job("monitor", end, partition=start.date().isoformat())
    store = MonitoringStore(state.settings.paths.monitoring)
    report = store.latest(state.traffic.model)
    retrains: list[dict[str, Any]] = []
    policy = state.config.policy
    if policy == "scheduled":
        for r in state.domain.cadence.retrain:
            if _due(r.cron, start):
                retrains.append(state.retrain(r.name, end, app, "schedule"))
    elif policy == "triggered":
        asked = retrain_requests(state.domain.watches, store, after=state.cursor)
        if asked:
            state.cursor = max(a.day for a in asked)
            why = "alert: " + ", ".join(sorted({x for a in asked for x in a.alerts}))
            for r in state.domain.cadence.retrain:
                if r.on_alert:
                    retrains.append(state.retrain(r.name, end, app, why))
    result.promotions += retrains
    versions = [
        a.body.get("models", {}).get(state.traffic.model) for a in answers if a.status == 200
    ]
    row = {
        "day": start.date().isoformat(),
        "index": len(result.daily),
        "requests": len(answers),
        "failed": sum(a.status >= 500 for a in answers),
        "rejected": sum(400 <= a.status < 500 for a in answers),
        "served_version": max(set(versions), key=versions.count) if versions else None,
        **state.traffic.outcome(seen, answers),
        **trailing,
        "label_coverage": report.label_coverage if report else None,
        "alerts": report.alerts if report else [],
        "flagged": [n for n, s in report.signals.items() if s.flagged] if report else [],
        "estimated_recall": report.estimated["recall_at_1pct_fpr"]["value"]
        if report and report.estimated
        else None,
        "retrained": [r["retrain"] for r in retrains],
        "promoted": [r["version"] for r in retrains if r["promoted"]],
        "seconds": round(time.perf_counter() - t, 1),
    }
    state.say(
        f"{row['day']}: {row['requests']} requests, "
        f"recall@1%FPR {row.get('recall_at_1pct_fpr', float('nan')):.3f}, "
        f"alerts {row['alerts'] or 'none'}, {row['seconds']} s"
    )
    return row
