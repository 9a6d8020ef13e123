"""The rendered Kubernetes manifests: valid for the pinned Kubernetes version (kubernetes-validate
ships its schemas: offline), consistent with each other, with the image and with the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from couturier.deploy import KUBERNETES_VERSION, Values, load_values, manifests
from couturier.errors import InvalidInputError
from couturier.settings import PRODUCTION_REQUIRED

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "deploy" / "kubernetes" / "values.example.yaml"


def by_kind(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in rendered}


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    return by_kind(manifests(load_values(EXAMPLE)))


def test_every_manifest_is_valid_for_the_pinned_kubernetes(
    rendered: dict[str, dict[str, Any]],
) -> None:
    assert set(rendered) == {
        "ServiceAccount",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Job",
    }
    for manifest in rendered.values():
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_validation_is_not_vacuous(rendered: dict[str, dict[str, Any]]) -> None:
    """A wrong type and an unknown field both fail the same check."""
    broken = yaml.safe_load(yaml.safe_dump(rendered["Deployment"]))
    broken["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    stray = yaml.safe_load(yaml.safe_dump(rendered["Service"]))
    stray["spec"]["prots"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(stray, KUBERNETES_VERSION, strict=True)


def test_the_selectors_find_the_serving_pods(rendered: dict[str, dict[str, Any]]) -> None:
    deployment = rendered["Deployment"]
    pods = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == pods
    assert rendered["Service"]["spec"]["selector"] == pods
    assert rendered["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == pods
    target = rendered["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert all(c["labelSelector"]["matchLabels"] == pods for c in spread)


def test_a_rolling_update_drains_before_it_stops(rendered: dict[str, dict[str, Any]]) -> None:
    """Readiness on the OIP route, a preStop sleep inside the grace period, no replica down
    before its successor is ready."""
    spec = rendered["Deployment"]["spec"]
    pod = spec["template"]["spec"]
    (serve,) = pod["containers"]
    assert serve["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert serve["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert serve["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "10"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "replicas" not in spec  # the autoscaler owns the count: an apply must not reset it
    longer = by_kind(manifests(Values(image="couturier:1", drain_seconds=45)))["Deployment"]
    pod = longer["spec"]["template"]["spec"]
    assert pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "45"]
    assert pod["terminationGracePeriodSeconds"] == 75  # the drain, then 30 s for uvicorn
    assert rendered["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_the_pods_run_the_images_user_with_the_production_settings(
    rendered: dict[str, dict[str, Any]],
) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for kind in ("Deployment", "Job"):
        (container,) = rendered[kind]["spec"]["template"]["spec"]["containers"]
        user = container["securityContext"]["runAsUser"]
        assert f"USER {user}:" in dockerfile
        env = {e["name"]: e for e in container["env"]}
        assert env["COUTURIER_PROFILE"]["value"] == "production"
        # every setting the production profile refuses to start without comes from the Secret
        for field in PRODUCTION_REQUIRED:
            ref = env[f"COUTURIER_{field.upper()}"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "couturier", "key": f"COUTURIER_{field.upper()}"}
    (job,) = rendered["Job"]["spec"]["template"]["spec"]["containers"]
    assert job["args"] == ["db", "upgrade"]


def test_each_image_gets_its_own_migration_job() -> None:
    """A Job's template is immutable: re-applying one name with a new image would fail."""
    one, two = (
        by_kind(manifests(Values(image=f"couturier:{tag}")))["Job"]["metadata"]["name"]
        for tag in ("1", "2")
    )
    assert one != two and one.startswith("couturier-migrate-")
    again = by_kind(manifests(Values(image="couturier:1")))["Job"]["metadata"]["name"]
    assert again == one


def test_the_role_annotation_follows_the_values() -> None:
    with_role = by_kind(manifests(load_values(EXAMPLE)))["ServiceAccount"]
    assert with_role["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(
        ":role/couturier-serving"
    )
    without = by_kind(manifests(Values(image="couturier:1")))["ServiceAccount"]
    assert "annotations" not in without["metadata"]


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("image: x\nmin_replicas: 5\nmax_replicas: 2\n", "values", "below min_replicas"),
        ("image: x\nreplicas: 3\n", "replicas", "Extra inputs"),
        ("image: x\nname: Couturier_1\n", "name", "should match pattern"),
        ("image: x\nresources: {cpu: lots}\n", "resources.cpu", "should match pattern"),
        ("min_replicas: 2\n", "image", "Field required"),
        ("- image\n", "values", "not a mapping"),
        ("image: [\n", "values", "not YAML"),
    ],
)
def test_bad_values_are_refused_by_field(tmp_path: Path, text: str, field: str, words: str) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInputError) as caught:
        load_values(path)
    assert caught.value.field == field
    assert words in caught.value.message and str(path) in caught.value.message


def test_the_cli_writes_one_file_per_object(tmp_path: Path) -> None:
    from couturier.cli import app

    result = CliRunner().invoke(
        app, ["deploy", "render", "--values", str(EXAMPLE), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "out").glob("*.yaml"))
    kinds = [yaml.safe_load(f.read_text())["kind"] for f in files]
    assert kinds == [m["kind"] for m in manifests(load_values(EXAMPLE))]
    missing = CliRunner().invoke(
        app, ["deploy", "render", "--values", str(tmp_path / "nope.yaml"), "--out", "x"]
    )
    # rendering again into the same folder rewrites it; a file this render would not write is
    # refused (kubectl apply -f would apply it too) and nothing is written
    again = CliRunner().invoke(
        app, ["deploy", "render", "--values", str(EXAMPLE), "--out", str(tmp_path / "out")]
    )
    assert again.exit_code == 0, again.output
    (tmp_path / "out" / "99-stale.yaml").write_text("kind: Service\n")
    before = {f: f.stat().st_mtime_ns for f in files}
    stale = CliRunner().invoke(
        app, ["deploy", "render", "--values", str(EXAMPLE), "--out", str(tmp_path / "out")]
    )
    assert isinstance(stale.exception, InvalidInputError)
    assert "99-stale.yaml" in stale.exception.message
    assert {f: f.stat().st_mtime_ns for f in files} == before
    # the CLI's main() prints it as one line (tests/unit/cli covers that path)
    assert isinstance(missing.exception, InvalidInputError)
    assert "cannot be read" in missing.exception.message
