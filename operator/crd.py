"""What a ``WebhookRetryPolicy`` is: its API names, its schema, and the checks the API server makes.

``crds/webhookretrypolicy.yaml`` is the source of truth. The helpers here apply its defaults and
validate against its ``openAPIV3Schema`` the way the API server would (without pruning), so that
tests can check example policies, and the kubectl plugin can refuse a bad ``tune`` before it
patches. CEL cannot run here, so :func:`check_rules` states the CEL rules again in Python.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

GROUP = "tenrusl.io"
VERSION = "v1alpha1"
PLURAL = "webhookretrypolicies"
KIND = "WebhookRetryPolicy"
CRD_NAME = f"{PLURAL}.{GROUP}"
API_VERSION = f"{GROUP}/{VERSION}"

# The file lives beside the package in a source checkout; TENRUSL_CRD_FILE points elsewhere.
CRD_FILE = Path(__file__).resolve().parent.parent / "crds" / "webhookretrypolicy.yaml"


class SpecError(ValueError):
    """A policy spec breaks the CRD's schema or CEL rules; the message names the field."""


def crd_path() -> Path:
    return Path(os.environ.get("TENRUSL_CRD_FILE") or CRD_FILE)


@functools.cache
def load_crd(path: str | None = None) -> dict[str, Any]:
    """The CRD document, parsed once."""
    with open(path or crd_path(), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def version_entry(crd: Mapping[str, Any] | None = None) -> dict[str, Any]:
    crd = crd or load_crd()
    for entry in crd["spec"]["versions"]:
        if entry["name"] == VERSION:
            return entry
    raise LookupError(f"{CRD_NAME} has no version {VERSION}")


def object_schema(crd: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of the served version."""
    return version_entry(crd)["schema"]["openAPIV3Schema"]


def apply_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """A copy of ``value`` with the schema's defaults filled in.

    Same order as the API server: set the missing properties that have a default, then walk into
    every property, defaulted ones included (so ``backoff: {}`` gains its own defaults).
    """
    value = copy.deepcopy(value)
    _default_in_place(value, schema)
    return value


def _default_in_place(value: Any, schema: Mapping[str, Any]) -> None:
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, sub in properties.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        for key, item in value.items():
            if key in properties:
                _default_in_place(item, properties[key])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default_in_place(item, schema["items"])


def _json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The structural schema as plain JSON Schema: drop the Kubernetes extensions."""
    out: dict[str, Any] = {}
    for key, item in schema.items():
        if key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            out[key] = {name: _json_schema(sub) for name, sub in item.items()}
        elif key == "items":
            out[key] = _json_schema(item)
        else:
            out[key] = item
    if (
        out.get("type") == "object"
        and "properties" in out
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        # The API server would prune unknown fields; a policy written with one is a mistake.
        out["additionalProperties"] = False
    return out


def validate_spec(spec: Mapping[str, Any], *, defaulted: bool = True) -> dict[str, Any]:
    """Default and validate a spec; return the defaulted spec or raise :class:`SpecError`."""
    import jsonschema  # a test dependency; the operator and the plugin never call this

    spec_schema = object_schema()["properties"]["spec"]
    value = apply_defaults(dict(spec), spec_schema) if defaulted else dict(spec)
    validator = jsonschema.Draft7Validator(_json_schema(spec_schema))
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or "spec"
        raise SpecError(f"spec.{where}: {first.message}" if first.absolute_path else f"spec: {first.message}")
    check_rules(value)
    return value


def check_rules(spec: Mapping[str, Any]) -> None:
    """The CRD's CEL rules (``x-kubernetes-validations``) on a defaulted spec, in Python."""
    backoff = spec.get("backoff") or {}
    base, cap = backoff.get("baseMs"), backoff.get("capMs")
    if isinstance(base, int) and isinstance(cap, int) and cap < base:
        raise SpecError(f"spec.backoff.capMs: {cap} must be greater than or equal to backoff.baseMs ({base})")
    schedule = backoff.get("schedule")
    attempts = spec.get("maxAttempts")
    if isinstance(schedule, list) and isinstance(attempts, int) and len(schedule) > attempts:
        raise SpecError(
            f"spec.backoff.schedule: {len(schedule)} delays is more than maxAttempts ({attempts})"
        )


def cel_rules(crd: Mapping[str, Any] | None = None) -> dict[str, list[str]]:
    """Every CEL rule in the schema, keyed by the dotted path of the node that carries it."""
    found: dict[str, list[str]] = {}

    def walk(node: Mapping[str, Any], path: str) -> None:
        rules = [rule["rule"] for rule in node.get("x-kubernetes-validations", [])]
        if rules:
            found[path] = rules
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{name}" if path else name)
        if "items" in node:
            walk(node["items"], f"{path}[]")

    walk(object_schema(crd), "")
    return found
