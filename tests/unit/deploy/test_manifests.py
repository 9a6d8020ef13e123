"""The rendered Kubernetes manifests: valid for the pinned Kubernetes version (kubernetes-validate
ships its schemas: offline) and, for custom resources, for the CRDs vendored in
deploy/kubernetes/crds; consistent with each other, with the image and with the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from couturier.deploy import (
    KUBERNETES_VERSION,
    ImageTier,
    Resources,
    Values,
    load_values,
    manifests,
)
from couturier.errors import InvalidInputError
from couturier.settings import PRODUCTION_REQUIRED
from tests.support.crd import validate_custom_resource

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "deploy" / "kubernetes" / "values.example.yaml"
#: API groups whose objects are custom resources, checked against the vendored CRDs
CUSTOM_GROUPS = {"monitoring.coreos.com", "ray.io"}


def by_kind(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The serving tier's objects by kind (the first of each kind: the serving one)."""
    found: dict[str, dict[str, Any]] = {}
    for m in rendered:
        found.setdefault(m["kind"], m)
    return found


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    return by_kind(manifests(load_values(EXAMPLE)))


@pytest.mark.parametrize("image_tier", [False, True])
def test_every_manifest_is_valid_for_the_pinned_kubernetes_or_its_crd(image_tier: bool) -> None:
    """The example as it is, and with the image tier on (its RayService, and the serving pods
    calling it)."""
    values = load_values(EXAMPLE)
    assert values.image_tier.enabled is False  # the example shows the default
    if image_tier:
        values = values.model_copy(update={"image_tier": ImageTier(enabled=True)})
    everything = manifests(values)
    named = sorted((m["kind"], m["metadata"]["name"]) for m in everything if m["kind"] != "Job")
    ray = [("RayService", "couturier-image-tier")] if image_tier else []
    assert named == [
        ("ConfigMap", "couturier-dagster"),
        ("ConfigMap", "couturier-prometheus-adapter"),
        ("Deployment", "couturier"),
        ("Deployment", "couturier-dagster-daemon"),
        ("Deployment", "couturier-dagster-webserver"),
        ("Deployment", "couturier-mlflow"),
        ("HorizontalPodAutoscaler", "couturier"),
        ("PodDisruptionBudget", "couturier"),
        ("PrometheusRule", "couturier"),
        *ray,
        ("Service", "couturier"),
        ("Service", "couturier-dagster-webserver"),
        ("Service", "couturier-mlflow"),
        ("ServiceAccount", "couturier"),
        ("ServiceMonitor", "couturier"),
    ]
    assert [m["kind"] for m in everything].count("Job") == 1
    custom = [m for m in everything if m["apiVersion"].split("/")[0] in CUSTOM_GROUPS]
    assert {m["kind"] for m in custom} == {"ServiceMonitor", "PrometheusRule", *(k for k, _ in ray)}
    for manifest in everything:
        if manifest in custom:  # kubernetes-validate knows only the built-in kinds
            validate_custom_resource(manifest)
        else:
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
    assert pod["terminationGracePeriodSeconds"] == 75  # the drain, then 30 s for the server
    assert rendered["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def pods(everything: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each workload's one container, by the workload's name."""
    found = {}
    for m in everything:
        if m["kind"] in ("Deployment", "Job"):
            (container,) = m["spec"]["template"]["spec"]["containers"]
            found[m["metadata"]["name"]] = container
    return found


def test_the_pods_run_the_images_user_with_the_production_settings() -> None:
    everything = manifests(load_values(EXAMPLE))
    dockerfile = (ROOT / "Dockerfile").read_text()
    containers = pods(everything)
    assert len(containers) == 5
    mlflow = by_name(everything, "Service", "couturier-mlflow")
    (port,) = mlflow["spec"]["ports"]
    for name, container in containers.items():
        assert f"USER {container['securityContext']['runAsUser']}:" in dockerfile, name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        if name == "couturier-mlflow":
            continue  # the MLflow server reads none of couturier's settings
        env = {e["name"]: e for e in container["env"]}
        assert env["COUTURIER_PROFILE"]["value"] == "production"
        # every setting the production profile refuses to start without comes from the Secret,
        # but the tracking URI: the rendered MLflow server's Service
        for field in PRODUCTION_REQUIRED:
            variable = env[f"COUTURIER_{field.upper()}"]
            if field == "mlflow_tracking_uri":
                assert variable["value"] == f"http://couturier-mlflow.couturier.svc:{port['port']}"
                continue
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "couturier", "key": f"COUTURIER_{field.upper()}"}
    assert containers[by_kind(everything)["Job"]["metadata"]["name"]]["args"] == ["db", "upgrade"]


def by_name(everything: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = (m for m in everything if m["kind"] == kind and m["metadata"]["name"] == name)
    return found


def test_every_secret_key_a_pod_reads_is_documented() -> None:
    """The operator writes the Secret from the docs: a key they do not name stops a pod."""
    everything = manifests(load_values(EXAMPLE))
    refs = [
        e["valueFrom"]["secretKeyRef"]
        for container in pods(everything).values()
        for e in container["env"]
        if "valueFrom" in e
    ]
    assert {r["name"] for r in refs} == {"couturier"}
    keys = {r["key"] for r in refs}
    assert {"MLFLOW_BACKEND_STORE_URI", "DAGSTER_POSTGRES_URL", "COUTURIER_ADMIN_TOKEN"} <= keys
    for doc in (ROOT / "deploy" / "README.md", EXAMPLE):
        text = doc.read_text()
        assert [k for k in sorted(keys) if k not in text] == [], doc.name


def test_the_example_shows_every_key() -> None:
    """The example is the values' reference: a new field must appear in it."""
    example = yaml.safe_load(EXAMPLE.read_text())
    assert set(example) == set(Values.model_fields)
    for field, info in Values.model_fields.items():
        if info.annotation is Resources:
            assert set(example[field]) == set(Resources.model_fields), field
    tier = example["image_tier"]
    assert set(tier) == set(ImageTier.model_fields)
    for field, info in ImageTier.model_fields.items():
        if info.annotation is Resources:
            assert set(tier[field]) == set(Resources.model_fields), field


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
        ("image: x\nin_flight_target: 0\n", "in_flight_target", "greater than or equal to 1"),
        (
            "image: x\nmlflow_resources: {memory: 2Gi, memory_limit: 1536Mi}\n",
            "mlflow_resources",
            "memory_limit (1536Mi) is below memory (2Gi)",
        ),
        (
            "image: x\nprometheus_labels: {release: kube prometheus}\n",
            "prometheus_labels.release",
            "should match pattern",
        ),
        (
            "image: x\nprometheus_labels: {-release: x}\n",
            "prometheus_labels.-release.[key]",
            "should match pattern",
        ),
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
    # each file reads back as the object, in apply order (multi-line strings as | blocks)
    assert [yaml.safe_load(f.read_text()) for f in files] == manifests(load_values(EXAMPLE))
    assert "expr: |" in next(f for f in files if "prometheusrule" in f.name).read_text()
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
    args = ["--values", str(EXAMPLE), "--out", str(tmp_path / "other")]
    other = CliRunner().invoke(
        app, ["deploy", "render", *args, "--alerts", str(tmp_path / "nope.yml")]
    )
    assert isinstance(other.exception, InvalidInputError) and other.exception.field == "alerts"
    assert not (tmp_path / "other").exists()  # refused before anything is written
    # the CLI's main() prints it as one line (tests/unit/cli covers that path)
    assert isinstance(missing.exception, InvalidInputError)
    assert "cannot be read" in missing.exception.message
