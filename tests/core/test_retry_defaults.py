"""One source for the retry defaults and bounds (tenrusl/policy.py, KNOBS), held against every copy.

The settings, the policy type, the CRD's schema, the kubectl plugin's and the CLI's help, and the
policy-file table of docs/retry.md must all say what the table says.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tenrusl.constants import PROVIDERS
from tenrusl.policy import KNOB, KNOBS, Knob, RetryPolicy
from tenrusl.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TUNABLE = [knob for knob in KNOBS if knob.file_key]


def crd_spec() -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / "webhookretrypolicy.yaml").read_text())
    [version] = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]


def crd_property(file_key: str) -> dict[str, Any]:
    node = crd_spec()
    for part in file_key.split("."):
        node = node["properties"][part]
    return node


def subcommand_help(parser: argparse.ArgumentParser, *path: str) -> str:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return " ".join(parser.format_help().split())


def test_settings_defaults_are_the_policy_defaults() -> None:
    declared, read = Settings(), Settings.from_env({})
    for knob in KNOBS:
        assert getattr(declared, knob.setting) == getattr(read, knob.setting) == knob.default, knob.env
    assert RetryPolicy.from_settings(read) == RetryPolicy()
    for knob in KNOBS:
        assert getattr(RetryPolicy(), knob.field) == knob.default


@pytest.mark.parametrize("knob", KNOBS, ids=[k.env for k in KNOBS])
def test_settings_enforce_the_policy_bounds(knob: Knob) -> None:
    if knob.choices:
        assert Settings.from_env({knob.env: knob.choices[-1]}).backoff_mode == knob.choices[-1]
        return
    assert knob.minimum is not None and knob.maximum is not None
    ok = {knob.env: str(knob.maximum)}
    if knob.field == "base_ms":
        ok["TENRUSL_RETRY_CAP_MS"] = str(knob.maximum)
    assert getattr(Settings.from_env(ok), knob.setting) == knob.maximum
    for bad in (knob.minimum - 1, knob.maximum + 1):
        with pytest.raises(ValueError, match=knob.env):
            Settings.from_env({knob.env: str(bad)})


@pytest.mark.parametrize("knob", TUNABLE, ids=[k.field for k in TUNABLE])
def test_the_crd_states_the_policy_defaults_and_bounds(knob: Knob) -> None:
    prop = crd_property(str(knob.file_key))
    assert prop["default"] == knob.default
    if knob.choices:
        assert tuple(prop["enum"]) == knob.choices
    else:
        assert (prop["minimum"], prop["maximum"]) == (knob.minimum, knob.maximum)


def test_the_crd_lists_agree_with_the_policy() -> None:
    spec = crd_spec()
    schedule = spec["properties"]["backoff"]["properties"]["schedule"]
    assert schedule["maxItems"] == KNOB["max_attempts"].maximum
    assert schedule["items"]["maximum"] == KNOB["cap_ms"].maximum
    assert tuple(spec["properties"]["providers"]["items"]["enum"]) == PROVIDERS
    assert spec["properties"]["providers"]["maxItems"] == len(PROVIDERS)


def test_the_plugin_and_the_cli_print_the_policy_bounds() -> None:
    from tenrusl_operator import plugin

    from retry_job.cli import register

    tune = subcommand_help(plugin.build_parser(), "tune")
    commands = argparse.ArgumentParser().add_subparsers()
    register(commands)
    run = subcommand_help(commands.choices["retry"], "run")
    for knob in TUNABLE:
        flag = "--" + knob.field.replace("_", "-")
        assert flag in tune and flag in run
        assert f"({knob.bounds}; default {knob.default})" in tune, knob.field
        assert knob.bounds in run, knob.field


def test_docs_policy_file_table_states_the_defaults_and_bounds() -> None:
    text = (ROOT / "docs" / "retry.md").read_text()
    rows = {
        m[1]: (m[2].strip(), m[3].strip())
        for m in re.finditer(r"^\| `([a-zA-Z.]+)` \| [^|]+ \| ([^|]*) \| ([^|]*) \|", text, re.M)
    }
    for knob in TUNABLE:
        default, bounds = rows[str(knob.file_key)]
        assert default == f"`{knob.default}`", knob.file_key
        assert bounds.startswith(f"`{knob.bounds}`"), (knob.file_key, bounds)
