"""Custom resources checked offline against the CRD schemas vendored in deploy/kubernetes/crds.

Strict where Kubernetes is lenient: an object schema with ``properties`` and neither
``additionalProperties`` nor ``x-kubernetes-preserve-unknown-fields`` refuses unknown fields
here, where the API server would prune them silently (a misspelt field would vanish).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = ["CRDS", "CustomResourceError", "validate_custom_resource"]

CRDS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "crds"
_NESTED = ("items", "additionalProperties", "not")
_LISTS = ("anyOf", "allOf", "oneOf")
#: libyaml's safe loader where PyYAML has it: KubeRay's CRD is 1 MB (1 s in pure Python)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CustomResourceError(ValueError):
    """A custom resource its CRD's schema refuses: every problem, one per line."""


def _strict(schema: Any) -> Any:
    """A copy of an OpenAPI v3 schema with unknown fields refused and ``nullable`` honoured."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: _strict(v) for k, v in out["properties"].items()}
        if "additionalProperties" not in out and not out.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
    for key in _NESTED:
        if isinstance(out.get(key), dict):
            out[key] = _strict(out[key])
    for key in _LISTS:
        if key in out:
            out[key] = [_strict(s) for s in out[key]]
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


@cache
def _schemas(folder: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, version, kind) -> the strict schema, for each served version in ``folder``."""
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        crd = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                key = (spec["group"], version["name"], spec["names"]["kind"])
                found[key] = _strict(version["schema"]["openAPIV3Schema"])
    return found


def validate_custom_resource(manifest: Mapping[str, Any], crds: Path = CRDS) -> None:
    """Check ``manifest`` against its CRD among ``crds``'s YAML files; CustomResourceError
    names every problem (path, then what is wrong), or that no vendored CRD serves it."""
    group, _, version = str(manifest.get("apiVersion", "")).rpartition("/")
    key = (group, version, str(manifest.get("kind")))
    schemas = _schemas(crds)
    if key not in schemas:
        raise CustomResourceError(
            f"no CRD in {crds} serves {manifest.get('kind')} {manifest.get('apiVersion')}; "
            f"vendor its CRD there (served: {sorted(schemas)})"
        )
    validator = jsonschema.Draft7Validator(schemas[key])
    problems = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    ]
    if problems:
        raise CustomResourceError(
            f"{manifest['kind']} {manifest.get('metadata', {}).get('name')!r}:\n"
            + "\n".join(problems)
        )
