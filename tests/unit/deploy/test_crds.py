"""The custom resource validator (tests/support/crd.py) and the CRDs it reads: it refuses what
the API server would refuse, and what it would silently prune."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from couturier.deploy import Values, manifests
from tests.support.crd import CRDS, CustomResourceError, validate_custom_resource


@pytest.fixture(scope="module")
def monitor() -> dict[str, Any]:
    (found,) = (m for m in manifests(Values(image="couturier:1")) if m["kind"] == "ServiceMonitor")
    return found


def test_a_misspelt_field_fails_where_kubernetes_would_prune_it(monitor: dict[str, Any]) -> None:
    validate_custom_resource(monitor)
    for where in ("spec", "endpoint", "root"):
        stray = copy.deepcopy(monitor)
        target = {
            "spec": stray["spec"],
            "endpoint": stray["spec"]["endpoints"][0],
            "root": stray,
        }[where]
        target["scrapeIntervall"] = "15s"
        with pytest.raises(CustomResourceError, match="'scrapeIntervall' was unexpected"):
            validate_custom_resource(stray)


def test_a_wrong_type_or_value_fails(monitor: dict[str, Any]) -> None:
    wrong = copy.deepcopy(monitor)
    wrong["spec"]["endpoints"][0]["interval"] = 15  # a duration is a string: "15s"
    with pytest.raises(CustomResourceError, match=r"spec\.endpoints\.0\.interval: 15 is not"):
        validate_custom_resource(wrong)
    wrong["spec"]["endpoints"][0]["interval"] = "15 seconds"  # the CRD's duration pattern
    with pytest.raises(CustomResourceError, match="does not match"):
        validate_custom_resource(wrong)


def test_a_field_left_open_by_its_schema_stays_open(monitor: dict[str, Any]) -> None:
    """Labels are a map of strings (additionalProperties): any key is fine, a number is not."""
    labelled = copy.deepcopy(monitor)
    labelled["spec"]["selector"]["matchLabels"]["anything.example.com/at-all"] = "yes"
    validate_custom_resource(labelled)
    labelled["spec"]["selector"]["matchLabels"]["count"] = 3
    with pytest.raises(CustomResourceError, match="3 is not of type 'string'"):
        validate_custom_resource(labelled)


def test_a_kind_or_version_no_vendored_crd_serves_is_refused(monitor: dict[str, Any]) -> None:
    for api, kind in (("monitoring.coreos.com/v2", "ServiceMonitor"), ("ray.io/v1", "RayJob")):
        other = {**monitor, "apiVersion": api, "kind": kind}
        with pytest.raises(CustomResourceError, match="no CRD in"):
            validate_custom_resource(other)


def test_the_vendored_crds_are_the_release_the_readme_names() -> None:
    """prometheus-operator's carry their release; KubeRay's: test_ray_service.py."""
    readme = (CRDS / "README.md").read_text()
    (tag,) = set(re.findall(r"prometheus-operator/tree/(v[0-9.]+)/", readme))
    assert [f.name for f in sorted(CRDS.glob("*.yaml"))] == [
        "monitoring.coreos.com_prometheusrules.yaml",
        "monitoring.coreos.com_servicemonitors.yaml",
        "ray.io_rayservices.yaml",
    ]
    files = sorted(CRDS.glob("monitoring.coreos.com_*.yaml"))
    for path in files:
        crd = yaml.safe_load(Path(path).read_text())
        assert f"v{crd['metadata']['annotations']['operator.prometheus.io/version']}" == tag
        assert path.name in readme
