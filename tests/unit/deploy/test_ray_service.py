"""The image tier's RayService: valid for KubeRay's vendored CRD; its Serve config accepted by
Ray Serve's own schema with no key Serve would ignore; the builder it names importable and fed
the values' model; the worker pods sized for the replicas; the serving pods pointed at
KubeRay's serve Service; what KubeRay runs in the pods present in the image's environment."""

from __future__ import annotations

import copy
import hashlib
import importlib
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args

import pytest
import ray
import yaml
from pydantic import BaseModel
from ray.scripts.scripts import cli as ray_cli
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import ServeDeploySchema

from couturier.deploy import ImageTier, Resources, Values, load_values, manifests, write_manifests
from couturier.deploy._ray import DEPLOYMENT, IMPORT_PATH, PROXY_HEALTH_PATH, SERVE_PORT
from couturier.domains.authentication import fusion
from couturier.domains.authentication._image_net import MODEL_NAME
from couturier.errors import InvalidInputError
from couturier.serving import ray_tier
from couturier.settings import Settings
from tests.support.crd import CRDS, CustomResourceError, validate_custom_resource

ROOT = Path(__file__).resolve().parents[3]
ENABLED = Values(image="couturier:1", image_tier=ImageTier(enabled=True))
ONNX_TIER: Any = ray_tier.OnnxTier  # a Ray Serve Deployment once decorated


def ray_service(everything: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = (m for m in everything if m["kind"] == "RayService")
    return found


def containers(everything: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every workload's containers by name: the Deployments' and Jobs', the Ray head's and
    workers' (``ray-head``, ``ray-worker``)."""
    found = {}
    for m in everything:
        if m["kind"] in ("Deployment", "Job"):
            (container,) = m["spec"]["template"]["spec"]["containers"]
            found[m["metadata"]["name"]] = container
        if m["kind"] == "RayService":
            for pod in ray_pods(m):
                (container,) = pod["containers"]
                found[container["name"]] = container
    return found


def ray_pods(service: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The head's pod spec and the (one) worker group's."""
    cluster = service["spec"]["rayClusterConfig"]
    (workers,) = cluster["workerGroupSpecs"]
    return cluster["headGroupSpec"]["template"]["spec"], workers["template"]["spec"]


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    return ray_service(manifests(ENABLED))


def test_the_ray_service_is_valid_for_kuberays_crd(service: dict[str, Any]) -> None:
    validate_custom_resource(service)
    assert service["apiVersion"] == "ray.io/v1"
    assert service["metadata"]["name"] == "couturier-image-tier"


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("spec", "serveConfigV3"),
        ("cluster", "enableInTreeAutoScaling"),
        ("autoscaler", "securityContexts"),
        ("head", "rayStartParam"),
        ("workers", "minReplica"),
        ("head pod", "automountServiceAccountTokens"),
        ("worker container", "readinesProbe"),
        ("worker probe", "periodSecond"),
    ],
)
def test_a_misspelt_field_anywhere_in_it_fails(
    service: dict[str, Any], where: str, key: str
) -> None:
    """KubeRay's API server would prune it silently: the field would vanish."""
    stray = copy.deepcopy(service)
    cluster = stray["spec"]["rayClusterConfig"]
    head_pod, worker_pod = ray_pods(stray)
    target = {
        "spec": stray["spec"],
        "cluster": cluster,
        "autoscaler": cluster["autoscalerOptions"],
        "head": cluster["headGroupSpec"],
        "workers": cluster["workerGroupSpecs"][0],
        "head pod": head_pod,
        "worker container": worker_pod["containers"][0],
        "worker probe": worker_pod["containers"][0]["readinessProbe"],
    }[where]
    target[key] = target.get(key, 1)
    with pytest.raises(CustomResourceError, match=f"'{key}' was unexpected"):
        validate_custom_resource(stray)


def test_a_wrong_type_or_a_missing_field_fails(service: dict[str, Any]) -> None:
    wrong = copy.deepcopy(service)
    head = wrong["spec"]["rayClusterConfig"]["headGroupSpec"]
    head["rayStartParams"]["num-cpus"] = 0  # `ray start` flags are strings: "0"
    with pytest.raises(CustomResourceError, match="0 is not of type 'string'"):
        validate_custom_resource(wrong)
    wrong = copy.deepcopy(service)
    wrong["spec"]["serveConfigV2"] = yaml.safe_load(wrong["spec"]["serveConfigV2"])
    with pytest.raises(CustomResourceError, match=r"spec\.serveConfigV2: .* is not of type"):
        validate_custom_resource(wrong)
    wrong = copy.deepcopy(service)
    del wrong["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"]
    with pytest.raises(CustomResourceError, match="'maxReplicas' is a required property"):
        validate_custom_resource(wrong)


def test_the_vendored_crd_is_the_blob_the_readme_names() -> None:
    """KubeRay's CRD carries no release: its git blob id ties it to the tag's tree."""
    data = (CRDS / "ray.io_rayservices.yaml").read_bytes()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    rows = (CRDS / "README.md").read_text().splitlines()
    (row,) = (r for r in rows if r.startswith("| `ray.io_rayservices.yaml` |"))
    assert re.search(r"kuberay/tree/(v[0-9.]+)/ray-operator/config/crd/bases", row)
    assert f"`{blob}`" in row


def models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation admits: itself, or inside Optional, Union, List."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in models(arg)]


def unknown_keys(model: type[BaseModel], data: Any, where: str = "") -> list[str]:
    """The keys of ``data`` that ``model`` (recursively) has no field for. Ray Serve's schemas
    ignore unknown keys: a misspelt option would silently not apply."""
    if isinstance(data, list):
        return [k for i, item in enumerate(data) for k in unknown_keys(model, item, f"{where}{i}.")]
    if not isinstance(data, dict):
        return []
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    found = []
    for key, value in data.items():
        info = fields.get(key) or model.model_fields.get(key)
        if info is None:
            found.append(f"{where}{key}")
            continue
        for inner in models(info.annotation):
            found += unknown_keys(inner, value, f"{where}{key}.")
    return found


@contextmanager
def metrics_interval_deprecated() -> Iterator[None]:
    """Ray 2.60 warns on a ``metrics_interval_s`` other than 10 s: deprecated for environment
    variables to come, and still the interval its replicas report at."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The `metrics_interval_s` field", DeprecationWarning)
        yield


def serve_schema(config: Any) -> ServeDeploySchema:
    with metrics_interval_deprecated():
        return ServeDeploySchema.model_validate(config)


def autoscaling(config: Any) -> AutoscalingConfig:
    """Ray Serve's autoscaling config as its controller reads it (the application schema
    keeps it a dict, so its own checks only run here)."""
    with metrics_interval_deprecated():
        return AutoscalingConfig.model_validate(config)


def test_the_serve_config_is_what_ray_serve_accepts(service: dict[str, Any]) -> None:
    text = service["spec"]["serveConfigV2"]
    assert isinstance(text, str)  # KubeRay takes a YAML string
    config = yaml.safe_load(text)
    schema = serve_schema(config)
    assert unknown_keys(ServeDeploySchema, config) == []
    (app,) = schema.applications
    assert (app.import_path, app.route_prefix) == (IMPORT_PATH, "/")
    # the port the serving pods call and KubeRay's serve Service forwards: Serve's own
    assert schema.http_options.port == SERVE_PORT
    (deployment,) = app.deployments
    assert deployment.name == DEPLOYMENT == ONNX_TIER.name
    autoscaling(deployment.autoscaling_config)
    module, _, attribute = app.import_path.partition(":")
    assert getattr(importlib.import_module(module), attribute) is ray_tier.build


def test_the_key_check_catches_what_ray_serve_ignores(service: dict[str, Any]) -> None:
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    deployment = config["applications"][0]["deployments"][0]
    deployment["autoscaling_config"]["max_replica"] = 9
    deployment["ray_actor_options"]["num_cpu"] = 1
    serve_schema(config)  # accepted: Serve would drop both
    autoscaling(deployment["autoscaling_config"])
    assert unknown_keys(ServeDeploySchema, config) == [
        "applications.0.deployments.0.ray_actor_options.num_cpu",
        "applications.0.deployments.0.autoscaling_config.max_replica",
    ]


class _LoadCalledError(Exception):
    """What the stand-in registry raises: the name and ref the builder loads first."""


class _Registry:
    def __init__(self, settings: Settings) -> None:
        pass

    def load(self, name: str, ref: str) -> None:
        raise _LoadCalledError(name, ref)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("graph", "first"),
    [("fusion-2", ("fusion-2", "7")), (None, ("m-2", "7"))],
)
def test_the_builder_loads_what_the_values_name(
    monkeypatch: pytest.MonkeyPatch, graph: str | None, first: tuple[str, str]
) -> None:
    """With a graph, the graph's version first (its components name the model's version);
    without, the model's own."""
    tier = ImageTier(enabled=True, model="m-2", ref="7", graph=graph)
    config = yaml.safe_load(
        ray_service(manifests(Values(image="x", image_tier=tier)))["spec"]["serveConfigV2"]
    )
    monkeypatch.setattr("couturier.registry.ModelRegistry", _Registry)
    with pytest.raises(_LoadCalledError) as asked:
        ray_tier.build(config["applications"][0]["args"])
    assert asked.value.args == first


@pytest.mark.parametrize(
    ("replicas", "replica_cpus", "cores", "workers"),
    [
        ((1, 4), 0.5, "2", (1, 1)),
        ((2, 10), 0.5, "2", (1, 3)),
        ((3, 10), 1.0, "3", (1, 4)),
        ((5, 12), 0.3, "1", (2, 4)),  # 3 a pod: 0.9 of its core
        ((10, 20), 0.1, "1", (1, 2)),  # 10 a pod (1 // 0.1 is 9.0 in floating point)
    ],
)
def test_the_autoscaling_values_flow_into_serve_and_the_worker_group(
    replicas: tuple[int, int], replica_cpus: float, cores: str, workers: tuple[int, int]
) -> None:
    tier = ImageTier(
        enabled=True,
        min_replicas=replicas[0],
        max_replicas=replicas[1],
        target_ongoing_requests=3.5,
        metrics_interval_s=2,
        look_back_period_s=20,
        upscale_delay_s=5,
        downscale_delay_s=120,
        replica_cpus=replica_cpus,
        worker_resources=Resources(cpu=cores, memory="8Gi", memory_limit="8Gi"),
    )
    service = ray_service(manifests(Values(image="couturier:1", image_tier=tier)))
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    (deployment,) = config["applications"][0]["deployments"]
    assert deployment["autoscaling_config"] == {
        "min_replicas": replicas[0],
        "max_replicas": replicas[1],
        "target_ongoing_requests": 3.5,
        "metrics_interval_s": 2,
        "look_back_period_s": 20,
        "upscale_delay_s": 5,
        "downscale_delay_s": 120,
    }
    assert autoscaling(deployment["autoscaling_config"]).look_back_period_s == 20
    assert deployment["ray_actor_options"] == {"num_cpus": replica_cpus}
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    (group,) = cluster["workerGroupSpecs"]
    assert (group["minReplicas"], group["maxReplicas"]) == workers
    assert "replicas" not in group  # the autoscaler owns the count
    assert group["rayStartParams"] == {"num-cpus": cores}
    assert group["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == cores
    assert cluster["headGroupSpec"]["rayStartParams"] == {"num-cpus": "0"}  # no replica there


def test_the_defaults_are_the_tiers_benchmarked_ones() -> None:
    """The values' defaults are what ray_tier runs locally (the benchmarks' numbers)."""
    tier = ImageTier()
    assert tier.enabled is False
    assert {k: getattr(tier, k) for k in ray_tier.AUTOSCALING} == ray_tier.AUTOSCALING
    assert tier.replica_cpus == ONNX_TIER.ray_actor_options["num_cpus"]
    assert tier.model == MODEL_NAME  # what the authentication graph asks its remote for
    assert tier.graph == fusion.MODEL_NAME  # the graph whose components name its version


def test_disabled_there_is_no_ray_service_and_no_remote_model() -> None:
    everything = manifests(Values(image="couturier:1"))
    assert [m for m in everything if m["apiVersion"].startswith("ray.io/")] == []
    for name, container in containers(everything).items():
        assert "COUTURIER_REMOTE_MODELS" not in {e["name"] for e in container["env"]}, name


def test_enabled_the_serving_pods_call_the_serve_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = Values(
        image="couturier:1", name="shop", namespace="prod", image_tier=ImageTier(enabled=True)
    )
    everything = manifests(values)
    service = ray_service(everything)
    found = containers(everything)
    env = {e["name"]: e for e in found["shop"]["env"]}
    monkeypatch.setenv("COUTURIER_REMOTE_MODELS", env["COUTURIER_REMOTE_MODELS"]["value"])
    remote = Settings.load().remote_models
    # KubeRay's serve Service: <RayService>-serve-svc, the head container's "serve" port
    head = found["ray-head"]
    (port,) = (p["containerPort"] for p in head["ports"] if p["name"] == "serve")
    host = f"{service['metadata']['name']}-serve-svc.prod.svc"
    assert remote == {"authentication-image": f"http://{host}:{port}"}
    assert port == SERVE_PORT
    # the only caller: not the migrations, Dagster, MLflow, nor the tier itself
    others = [n for n, c in found.items() if "COUTURIER_REMOTE_MODELS" in str(c["env"])]
    assert others == ["shop"]


def test_the_ray_pods_are_the_images_with_the_serving_settings(service: dict[str, Any]) -> None:
    found = containers(manifests(ENABLED))
    serving = found["couturier"]
    settings = [e for e in serving["env"] if e["name"] != "COUTURIER_REMOTE_MODELS"]
    head_pod, worker_pod = ray_pods(service)
    autoscaler = service["spec"]["rayClusterConfig"]["autoscalerOptions"]
    for pod in (head_pod, worker_pod):
        (container,) = pod["containers"]
        assert container["image"] == "couturier:1"
        assert container["env"] == settings  # the Secret's keys and the MLflow Service
        assert container["securityContext"] == serving["securityContext"]
        # KubeRay runs `ray start` as the command: anything here would run before it
        assert "command" not in container and "args" not in container
        # writable Ray folders on a read-only root file system
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert {"/tmp", "/var/lib/couturier"} <= set(mounts)
        assert {v["name"] for v in pod["volumes"]} == set(mounts.values())
        assert pod["serviceAccountName"] == "couturier"
    assert autoscaler["securityContext"] == serving["securityContext"]
    assert [m["mountPath"] for m in autoscaler["volumeMounts"]] == ["/tmp"]
    # only the head, where the autoscaler sidecar calls the API server, mounts the token
    assert head_pod["automountServiceAccountToken"] is True
    assert worker_pod["automountServiceAccountToken"] is False


def test_a_worker_is_ready_when_its_serve_proxy_is(service: dict[str, Any]) -> None:
    """KubeRay's own readiness probe for a RayService worker execs wget, which the slim image
    lacks: the worker's probe is an HTTP GET on the Serve proxy's health route."""
    _, worker_pod = ray_pods(service)
    (worker,) = worker_pod["containers"]
    probe = worker["readinessProbe"]
    assert "exec" not in probe
    assert probe["httpGet"] == {"path": PROXY_HEALTH_PATH, "port": "serve"}
    assert {"name": "serve", "containerPort": SERVE_PORT, "protocol": "TCP"} in worker["ports"]
    serve_source = Path(ray.__file__).parent / "serve" / "_private" / "proxy_request_response.py"
    assert f'self.route_path == "{PROXY_HEALTH_PATH}"' in serve_source.read_text()


def test_what_kuberay_runs_is_in_the_images_ray(service: dict[str, Any]) -> None:
    """KubeRay runs `ray start` (its rayStartParams as flags), `ray health-check` (the workers'
    init container) and `ray kuberay-autoscaler` from the image's PATH, for its rayVersion."""
    cluster = service["spec"]["rayClusterConfig"]
    lock = (ROOT / "requirements.lock").read_text()
    assert cluster["rayVersion"] == ray.__version__
    assert f"\nray=={cluster['rayVersion']}\n" in lock
    assert {"start", "health-check", "kuberay-autoscaler"} <= set(ray_cli.commands)
    flags = {o for p in ray_cli.commands["start"].params for o in p.opts}
    for group in (cluster["headGroupSpec"], *cluster["workerGroupSpecs"]):
        assert {f"--{k}" for k in group["rayStartParams"]} <= flags
    # the image installs the lock into /opt/couturier and puts its bin first on PATH
    assert (Path(sys.prefix) / "bin" / "ray").is_file()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "RUN python -m venv /opt/couturier\n" in dockerfile
    assert re.search(r"^ENV PATH=/opt/couturier/bin:\$PATH", dockerfile, re.MULTILINE)


def test_the_cli_writes_it_last_with_its_config_as_a_block(tmp_path: Path) -> None:
    """Last: the files before it keep the numbers deploy/README.md's commands use."""
    written = write_manifests(ENABLED, tmp_path)
    assert written[-1].name == "15-rayservice-couturier-image-tier.yaml"
    text = written[-1].read_text()
    assert "serveConfigV2: |\n" in text
    assert yaml.safe_load(text) == ray_service(manifests(ENABLED))
    without = write_manifests(Values(image="couturier:1"), tmp_path / "without")
    assert [p.name for p in written[:-1]] == [p.name for p in without]


LONGEST = "a" * 36


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("image_tier: {min_replicas: 0}", "image_tier.min_replicas", "greater than or equal to 1"),
        ("image_tier: {min_replicas: 5, max_replicas: 2}", "image_tier", "below min_replicas"),
        (
            "image_tier: {target_ongoing_requests: 0}",
            "image_tier.target_ongoing_requests",
            "greater than 0",
        ),
        ("image_tier: {replicas: 3}", "image_tier.replicas", "Extra inputs"),
        (
            "image_tier: {metrics_interval_s: 5, look_back_period_s: 5}",
            "image_tier",
            "look_back_period_s (5.0) is not above metrics_interval_s (5.0)",
        ),
        ("image_tier: {ref: champion now}", "image_tier.ref", "should match pattern"),
        ("image_tier: {enabled: maybe}", "image_tier.enabled", "valid boolean"),
        (
            "image_tier: {worker_resources: {cpu: 1500m}}",
            "image_tier.worker_resources",
            "'1500m' is not a whole number of cores",
        ),
        ("image_tier: {replica_cpus: 4}", "image_tier", "no replica could be placed"),
        (f"name: {LONGEST}b\nimage_tier: {{enabled: true}}", "values", "to 36 at most"),
        ("name: 1shop\nimage_tier: {enabled: true}", "values", "starts with a digit"),
    ],
)
def test_bad_image_tier_values_are_refused_by_field(
    tmp_path: Path, text: str, field: str, words: str
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(f"image: x\n{text}\n")
    with pytest.raises(InvalidInputError) as caught:
        load_values(path)
    assert caught.value.field == field
    assert words in caught.value.message and str(path) in caught.value.message


def test_the_name_limits_apply_only_to_the_tier_and_the_longest_fits(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(f"image: x\nname: {LONGEST}b\n")
    assert load_values(path).name == f"{LONGEST}b"
    service = ray_service(
        manifests(Values(image="x", name=LONGEST, image_tier=ImageTier(enabled=True)))
    )
    assert len(service["metadata"]["name"]) == 47  # KubeRay's limit
    validate_custom_resource(service)
