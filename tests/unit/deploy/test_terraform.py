"""deploy/terraform, checked without an AWS account (nothing here is ever planned or applied).

- ``terraform fmt``, where a terraform binary is on PATH;
- ``terraform validate`` against the AWS provider's schema, where a local provider mirror holds
  the pinned version (``COUTURIER_TF_PLUGIN_MIRROR``, by default ``/opt/tf-plugins``): ``init``
  would otherwise download it;
- checkov, from its own venv (``.venv-checkov``, made by ``make test``: its pins do not fit
  requirements.lock);
- the ties to the Kubernetes side: the IRSA role trusts the ServiceAccount that
  ``couturier deploy render`` writes, and the outputs are the Secret's settings.

Each check has a companion showing that it fails on a broken copy, so a pass is not vacuous.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from couturier.deploy import KUBERNETES_VERSION, Values, load_values, manifests
from couturier.settings import PRODUCTION_REQUIRED

ROOT = Path(__file__).resolve().parents[3]
TERRAFORM_DIR = ROOT / "deploy" / "terraform"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
MIRROR = Path(os.environ.get("COUTURIER_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
TERRAFORM = shutil.which("terraform")

#: Checks skipped on purpose, each with its reason in a ``#checkov:skip=`` comment in the .tf
#: file (deploy/README.md lists them). A new skip must be added here too.
SKIPPED_CHECKS = {"CKV_AWS_18", "CKV2_AWS_62", "CKV_AWS_144"}

#: --skip-download: no call to Prisma Cloud (checkov's default fetches guidelines from there)
CHECKOV_OPTIONS = ("--quiet", "--compact", "--skip-download", "--output", "json")

needs_terraform = pytest.mark.skipif(
    TERRAFORM is None, reason="no terraform binary on PATH (install Terraform >= 1.9)"
)


def terraform(
    *args: str, cwd: Path, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    # CHECKPOINT_DISABLE: no version check over the network; TF_DATA_DIR and the plugin cache
    # would move .terraform out of the copy the tests made.
    skip = {"TF_DATA_DIR", "TF_PLUGIN_CACHE_DIR", "TF_CLI_CONFIG_FILE"}
    env = {k: v for k, v in os.environ.items() if k not in skip}
    env |= {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    if config is not None:
        env["TF_CLI_CONFIG_FILE"] = str(config)
    return subprocess.run(
        [str(TERRAFORM), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def copy_module(to: Path) -> Path:
    """The module without a stray local ``terraform init`` (.terraform/, its lock file)."""
    shutil.copytree(TERRAFORM_DIR, to, ignore=shutil.ignore_patterns(".terraform*"))
    return to


def blocks(text: str, kind: str) -> dict[str, str]:
    """``variable "x" { ... }`` -> {"x": body}: top-level blocks of one kind, cut at the next
    line that starts a top-level block. Enough for these files, not an HCL parser (python-hcl2
    is not in requirements.lock)."""
    found: dict[str, str] = {}
    for chunk in re.split(r"^(?=[a-z_]+ )", text, flags=re.MULTILINE):
        head = re.match(rf'{kind} "([\w-]+)"', chunk)
        if head:
            found[head.group(1)] = chunk
    return found


def string_default(body: str) -> str:
    """A variable's default, where it is a string literal on one line."""
    match = re.search(r'^  default\s*=\s*"([^"]*)"\s*$', body, flags=re.MULTILINE)
    assert match, f"no string default in:\n{body}"
    return match.group(1)


def variables() -> dict[str, str]:
    return blocks((TERRAFORM_DIR / "variables.tf").read_text(), "variable")


# ---- terraform fmt ---------------------------------------------------------------------------
@needs_terraform
def test_fmt_passes() -> None:
    result = terraform("fmt", "-check", "-recursive", "-diff", str(TERRAFORM_DIR), cwd=ROOT)
    assert result.returncode == 0, (
        f"run `terraform fmt -recursive deploy/terraform`:\n{result.stdout}"
    )


@needs_terraform
def test_fmt_refuses_a_misaligned_file(tmp_path: Path) -> None:
    module = copy_module(tmp_path / "terraform")
    rds = module / "rds.tf"
    text = rds.read_text()
    assert "  engine_version = var.postgres_version" in text
    rds.write_text(text.replace("engine_version = var", "engine_version     = var"))
    result = terraform("fmt", "-check", "-recursive", "-diff", str(module), cwd=tmp_path)
    assert result.returncode != 0
    assert "rds.tf" in result.stdout


# ---- terraform validate, against the pinned provider's schema --------------------------------
def pinned_aws_version() -> str:
    versions = (TERRAFORM_DIR / "versions.tf").read_text()
    match = re.search(r'source\s*=\s*"hashicorp/aws"\s*\n\s*version\s*=\s*"([0-9.]+)"', versions)
    assert match, "versions.tf must pin hashicorp/aws to one exact version"
    return match.group(1)


@pytest.fixture(scope="module")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of the module after ``terraform init``, its providers from the local mirror only;
    and the CLI configuration that says so."""
    if TERRAFORM is None:
        pytest.skip("no terraform binary on PATH (install Terraform >= 1.9)")
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    provider = f"registry.terraform.io/hashicorp/aws/{pinned_aws_version()}"
    if not (MIRROR / provider / f"{platform.system().lower()}_{arch}").is_dir():
        pytest.skip(
            f"no {provider} in the provider mirror {MIRROR} (set COUTURIER_TF_PLUGIN_MIRROR): "
            "without it `terraform init` downloads the provider"
        )
    tmp = tmp_path_factory.mktemp("validate")
    config = tmp / "terraform.rc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n'
        "}\n"  # and no `direct` block: nothing is downloaded
    )
    module = copy_module(tmp / "terraform")
    result = terraform("init", "-backend=false", "-no-color", cwd=module, config=config)
    assert result.returncode == 0, result.stdout + result.stderr
    return module, config


def validate(module: Path, config: Path) -> dict[str, Any]:
    result = terraform("validate", "-json", "-no-color", cwd=module, config=config)
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_validate_passes(initialized: tuple[Path, Path]) -> None:
    report = validate(*initialized)
    assert report["valid"], json.dumps(report["diagnostics"], indent=2)
    assert report["warning_count"] == 0, json.dumps(report["diagnostics"], indent=2)


def test_validate_refuses_an_argument_the_provider_does_not_have(
    initialized: tuple[Path, Path], tmp_path: Path
) -> None:
    module, config = initialized
    bad = tmp_path / "terraform"
    shutil.copytree(module, bad, symlinks=True)  # .terraform links into the mirror
    rds = bad / "rds.tf"
    rds.write_text(rds.read_text().replace("publicly_accessible ", "publicly_accesible "))
    report = validate(bad, config)
    assert not report["valid"]
    assert any("publicly_accesible" in d.get("detail", "") for d in report["diagnostics"])


# ---- checkov -----------------------------------------------------------------------------------
def checkov(directory: Path) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(
            f"{CHECKOV.relative_to(ROOT)} is missing: `make .venv-checkov/.installed` (or "
            "`make test`) creates it from tools/checkov/requirements.lock"
        )
    result = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", "terraform", *CHECKOV_OPTIONS],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: some check failed
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_checkov_passes() -> None:
    report = checkov(TERRAFORM_DIR)
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100  # the scan saw the resources, not an empty folder
    skips = re.findall(
        r"#checkov:skip=(\w+):\s*\S",  # an id and a reason
        "".join(p.read_text() for p in sorted(TERRAFORM_DIR.glob("*.tf"))),
    )
    assert set(skips) == SKIPPED_CHECKS
    assert summary["skipped"] == len(skips)  # each comment is one checkov honoured


def test_checkov_fails_a_public_unencrypted_database_and_bucket(tmp_path: Path) -> None:
    (tmp_path / "bad.tf").write_text(
        'resource "aws_s3_bucket" "open" {\n  bucket = "open"\n}\n\n'
        'resource "aws_db_instance" "open" {\n'
        '  engine              = "postgres"\n'
        '  instance_class      = "db.t4g.micro"\n'
        "  publicly_accessible = true\n"
        "  storage_encrypted   = false\n"
        "}\n"
    )
    failed = {c["check_id"] for c in checkov(tmp_path)["results"]["failed_checks"]}
    # the database is public (17) and unencrypted (16); the bucket has no public access block
    assert {"CKV_AWS_17", "CKV_AWS_16", "CKV2_AWS_6"} <= failed


# ---- the Kubernetes side -----------------------------------------------------------------------
def test_the_irsa_role_trusts_the_service_account_the_manifests_render() -> None:
    defaults = variables()
    account = next(
        m for m in manifests(Values(image="couturier:test")) if m["kind"] == "ServiceAccount"
    )
    assert string_default(defaults["namespace"]) == account["metadata"]["namespace"]
    assert string_default(defaults["service_account"]) == account["metadata"]["name"]
    iam = (TERRAFORM_DIR / "iam.tf").read_text()
    sub = '"system:serviceaccount:${var.namespace}:${var.service_account}"'
    assert f'"${{local.oidc_issuer}}:sub" = {sub}' in iam
    assert '"${local.oidc_issuer}:aud" = "sts.amazonaws.com"' in iam


def test_the_example_values_name_the_role_terraform_creates() -> None:
    """values.example.yaml's role_arn is what the role_arn output is with the defaults."""
    role_arn = load_values(ROOT / "deploy" / "kubernetes" / "values.example.yaml").role_arn
    assert role_arn is not None
    assert 'name = "${var.name}-serving"' in (TERRAFORM_DIR / "iam.tf").read_text()
    assert role_arn.endswith(f":role/{string_default(variables()['name'])}-serving")


def test_the_cluster_runs_the_kubernetes_version_the_manifests_are_validated_against() -> None:
    minor = ".".join(KUBERNETES_VERSION.split(".")[:2])
    assert string_default(variables()["kubernetes_version"]) == minor


def test_the_outputs_are_the_values_and_secret_settings_and_hide_the_passwords() -> None:
    outputs = blocks((TERRAFORM_DIR / "outputs.tf").read_text(), "output")
    assert "role_arn" in outputs and "role_arn" in Values.model_fields
    # PRODUCTION_REQUIRED's keys are the settings; the Secret's keys are COUTURIER_<KEY>
    infrastructure = {"redis_url", "postgres_dsn", "object_store_uri"}
    assert infrastructure <= set(PRODUCTION_REQUIRED) and infrastructure <= set(outputs)
    secrets = ("var.postgres_password", "var.redis_auth_token")
    carrying = {name for name, body in outputs.items() if any(s in body for s in secrets)}
    assert carrying == {"redis_url", "postgres_dsn"}
    for name in carrying:
        assert re.search(r"^  sensitive\s*=\s*true$", outputs[name], flags=re.MULTILINE), name
