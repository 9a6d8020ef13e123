"""The simulator's parameters, validated at the boundary.

>>> from couturier.marketplace import SimulationConfig
>>> SimulationConfig.of(listings=1000, scenario="camera_change").scenario_start
72.0
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from couturier.errors import InvalidParameterError
from couturier.marketplace._catalog import MAX_BRANDS
from couturier.marketplace._scenarios import SCENARIOS

__all__ = ["SimulationConfig"]


class SimulationConfig(BaseModel):
    """Everything that determines a simulated marketplace. Same config, same bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    listings: int = Field(5000, ge=1, description="number of listings")
    days: float = Field(120.0, gt=0, description="simulated period in days")
    seed: int = Field(7, ge=0, description="the seed of every random stream")
    prevalence: float = Field(0.04, ge=0.0, le=1.0, description="share of counterfeit listings")
    brands: int = Field(8, ge=1, le=MAX_BRANDS, description="number of luxury houses")
    sellers: int | None = Field(None, ge=1, description="seller accounts (default listings/15)")
    buyers: int | None = Field(None, ge=1, description="buyer accounts (default listings/5)")
    image_size: int = Field(96, ge=32, le=512, description="photo width and height in px")
    photos_min: int = Field(1, ge=1, le=4, description="fewest photos per listing")
    photos_max: int = Field(4, ge=1, le=4, description="most photos per listing")
    scenario: str = Field("none", description="drift scenario")
    scenario_start_day: float | None = Field(
        None, ge=0, description="day the scenario starts (default: 60% into the period)"
    )
    expert_miss_rate: float = Field(0.03, ge=0.0, le=1.0, description="P(verdict authentic | fake)")
    expert_false_alarm_rate: float = Field(
        0.001, ge=0.0, le=1.0, description="P(verdict counterfeit | authentic)"
    )
    verdict_coverage: float = Field(1.0, ge=0.0, le=1.0, description="share of listings judged")
    label_delay_median_days: float = Field(4.0, gt=0, description="median verdict delay in days")
    report_share: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="share of verdicts that come with the expert's control-point report",
    )
    start: datetime = Field(datetime(2026, 1, 1, tzinfo=UTC), description="first listing time")
    chunk_size: int = Field(2000, ge=1, description="listings per Parquet part file")
    render_photos: bool = Field(
        True,
        description="render photos; False leaves the photos table empty (listings still say "
        "how many they have) for tabular and feature workloads that need no pixels",
    )

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, value: str) -> str:
        if value not in SCENARIOS:
            raise ValueError(f"unknown scenario; accepted: {', '.join(sorted(SCENARIOS))}")
        return value

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2026-01-01T00:00:00+00:00")
        return value.astimezone(UTC)

    @classmethod
    def of(cls, **params: Any) -> SimulationConfig:
        """Build a config, turning the first broken rule into an :class:`InvalidParameterError`."""
        try:
            config = cls(**params)
        except ValidationError as exc:
            raise _to_parameter_error(exc) from None
        if config.photos_min > config.photos_max:
            raise InvalidParameterError(
                f"photos_min={config.photos_min} is more than photos_max={config.photos_max}; "
                "the rule is photos_min <= photos_max; lower photos_min or raise photos_max",
                field="photos_min",
            )
        return config

    @property
    def scenario_start(self) -> float:
        return self.scenario_start_day if self.scenario_start_day is not None else 0.6 * self.days

    @property
    def n_sellers(self) -> int:
        return self.sellers if self.sellers is not None else max(20, self.listings // 15)

    @property
    def n_buyers(self) -> int:
        return self.buyers if self.buyers is not None else max(50, self.listings // 5)


def _to_parameter_error(exc: ValidationError) -> InvalidParameterError:
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else "?"
    field = SimulationConfig.model_fields.get(name)
    if field is None:
        accepted = ", ".join(SimulationConfig.model_fields)
        return InvalidParameterError(
            f"{name!r} is not a simulator parameter; accepted parameters: {accepted}", field=name
        )
    rule = err["msg"].removeprefix("Value error, ")
    bounds = [
        f"{op} {getattr(m, attr)}"
        for m in field.metadata
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        if getattr(m, attr, None) is not None
    ]
    accepted = f"; accepted: {' and '.join(bounds)}" if bounds and "accepted" not in rule else ""
    return InvalidParameterError(
        f"{name}={err.get('input')!r} is refused ({field.description}): {rule}{accepted}",
        field=name,
    )
