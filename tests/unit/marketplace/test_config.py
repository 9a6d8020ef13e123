from __future__ import annotations

import pytest

from couturier.errors import InvalidParameterError
from couturier.marketplace import SCENARIOS, SimulationConfig


@pytest.mark.parametrize(
    ("params", "field", "hint"),
    [
        ({"listings": -5}, "listings", ">= 1"),
        ({"listings": 0}, "listings", ">= 1"),
        ({"prevalence": 1.5}, "prevalence", "<= 1.0"),
        ({"prevalence": -0.1}, "prevalence", ">= 0.0"),
        ({"expert_miss_rate": 2.0}, "expert_miss_rate", "<= 1.0"),
        ({"image_size": 8}, "image_size", ">= 32"),
        ({"brands": 99}, "brands", "<= 10"),
        ({"scenario": "alien_invasion"}, "scenario", "camera_change"),
        ({"days": 0}, "days", "> 0"),
        ({"photos_min": 3, "photos_max": 2}, "photos_min", "photos_min <= photos_max"),
        ({"lisitngs": 10}, "lisitngs", "listings"),
    ],
)
def test_impossible_parameters_name_the_parameter_the_rule_and_the_accepted_values(
    params: dict[str, object], field: str, hint: str
) -> None:
    with pytest.raises(InvalidParameterError) as info:
        SimulationConfig.of(**params)
    assert info.value.field == field
    assert field in info.value.message
    assert hint in info.value.message
    assert info.value.http_status == 422


def test_unknown_scenario_lists_every_accepted_scenario() -> None:
    with pytest.raises(InvalidParameterError) as info:
        SimulationConfig.of(scenario="nope")
    for name in SCENARIOS:
        assert name in info.value.message


def test_naive_start_time_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="time zone"):
        SimulationConfig.of(start="2026-01-01T00:00:00")


def test_scenario_starts_60_percent_into_the_period_by_default() -> None:
    assert SimulationConfig.of(days=100).scenario_start == pytest.approx(60.0)
    assert SimulationConfig.of(days=100, scenario_start_day=10).scenario_start == 10.0
