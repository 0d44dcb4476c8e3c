"""Every catalogue of providers agrees with tenrusl.constants.PROVIDERS, in its order.

Adding a provider (docs/adding-a-provider.md) touches a few files; this test names the one you
forgot: the core's entry, the receiver's verifier, signer and sample, the signed test vector,
docs/providers.md and docs/configuration.md, the OpenAPI and CRD enums.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from receiver.payments import REF_PREFIX
from receiver.providers import provider_class
from receiver.providers.base import Provider
from tenrusl.constants import PROVIDERS
from tenrusl.providers import ProviderSpec, provider_spec
from tests.providers.vectors import CASES

ROOT = Path(__file__).resolve().parents[2]
CORE_HELPERS = {"__init__", "base", "config", "fields", "keys", "payment_status"}
RECEIVER_HELPERS = {"__init__", "base", "crypto", "formats", "jwks", "remote", "paypal_api", "samples"}


def modules(folder: str, helpers: set[str]) -> set[str]:
    return {p.stem for p in (ROOT / folder).glob("*.py")} - helpers


def test_the_core_has_one_entry_per_provider() -> None:
    assert modules("tenrusl/providers", CORE_HELPERS) == set(PROVIDERS)
    for name in PROVIDERS:
        spec = provider_spec(name)
        assert type(spec) is not ProviderSpec and spec.name == name


def test_the_receiver_verifies_signs_and_samples_every_provider() -> None:
    assert modules("receiver/providers", RECEIVER_HELPERS) == set(PROVIDERS)
    for name in PROVIDERS:
        cls = provider_class(name)
        assert cls.name == name
        for method in ("verify", "sign", "signing_credentials", "sample"):
            assert getattr(cls, method) is not getattr(Provider, method), (name, method)


def test_every_provider_has_a_signed_test_vector_in_catalogue_order() -> None:
    assert tuple(CASES) == PROVIDERS


def test_docs_providers_md_has_one_row_per_provider_in_order() -> None:
    text = (ROOT / "docs" / "providers.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_]+)` \|", text, re.MULTILINE)
    assert tuple(rows) == PROVIDERS


def test_docs_configuration_md_lists_each_providers_variables() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| ([a-z_]+) \| `", text, re.MULTILINE))
    assert listed - {"any"} == set(PROVIDERS)


def _enums(node: Any) -> list[list[Any]]:
    found: list[list[Any]] = []
    if isinstance(node, dict):
        if "mock" in (node.get("enum") or []):
            found.append(node["enum"])
        for value in node.values():
            found += _enums(value)
    elif isinstance(node, list):
        for value in node:
            found += _enums(value)
    return found


def test_the_openapi_and_crd_enums_name_every_provider_in_order() -> None:
    for path in ("receiver/openapi.yaml", "crds/webhookretrypolicy.yaml"):
        enums = _enums(yaml.safe_load((ROOT / path).read_text(encoding="utf-8")))
        assert enums, path
        assert all(tuple(enum) == PROVIDERS for enum in enums), path


def test_reference_prefixes_name_known_providers() -> None:
    assert set(REF_PREFIX) <= set(PROVIDERS)
