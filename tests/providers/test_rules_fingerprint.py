"""The provider-rules fingerprint covers every rule and changes with any of them."""

from __future__ import annotations

from pathlib import Path

from tenrusl.constants import PROVIDERS
from tenrusl.providers import fingerprint, rule_files, rules_fingerprint

ROOT = Path(__file__).resolve().parents[2]


def test_it_covers_every_provider_module_the_shared_helpers_and_the_core_they_use() -> None:
    names = {entry.name for entry in rule_files()}
    assert {f"{name}.py" for name in PROVIDERS} <= names
    core = {"constants.py", "storable.py"}
    assert {p.name for p in (ROOT / "tenrusl" / "providers").glob("*.py")} | core == names


def test_it_is_stable_and_changes_with_one_byte_of_any_rule(tmp_path: Path) -> None:
    assert rules_fingerprint() == fingerprint(rule_files())
    assert len(rules_fingerprint()) == 16 and int(rules_fingerprint(), 16) >= 0
    copies = []
    for entry in rule_files():
        copy = tmp_path / entry.name
        copy.write_bytes(entry.read_bytes())
        copies.append(copy)
    assert fingerprint(copies) == rules_fingerprint()
    stripe = tmp_path / "stripe.py"
    stripe.write_bytes(stripe.read_bytes().replace(b"client_reference_id", b"client_reference"))
    assert fingerprint(copies) != rules_fingerprint()
