"""The chart's operator Role grants exactly the calls the operator makes, no more and no less.

The calls are recorded from kmock's request log in every kmock test of this folder
(``OPERATOR_CALLS`` in conftest.py). This test runs after them (``pytest_collection_modifyitems``
in tests/conftest.py moves it last); run alone, it skips.
"""

from __future__ import annotations

import pytest

from tests.chart import conftest as chart
from tests.chart.conftest import Render, one
from tests.conftest import KMOCK_TESTS
from tests.operator.conftest import OPERATOR_CALLS

pytestmark = pytest.mark.after_kmock_tests
# Rights no call uses but an admission plugin checks: the policy file's ConfigMap sets
# blockOwnerDeletion on its owner reference to the policy, which clusters enforcing owner
# references (OpenShift) allow only to whoever may update the owner's finalizers.
REQUIRED_BY_ADMISSION = {("tenrusl.io", "webhookretrypolicies/finalizers", "update")}
render = chart.render  # the chart folder's fixture, used here too


def role_grants(role: dict) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_operator_role_grants_exactly_the_calls_the_operator_made(
    render: Render, request: pytest.FixtureRequest
) -> None:
    kmock_tests = request.config.stash.get(KMOCK_TESTS, set())
    missing = kmock_tests - set(OPERATOR_CALLS)
    if not kmock_tests or missing:
        pytest.skip("the operator's kmock tests did not all run in this session; run tests/operator whole")
    made = set().union(*OPERATOR_CALLS.values())
    assert made, "the kmock tests recorded no operator call"
    granted = role_grants(one(render(), "Role"))
    assert sorted(made - granted) == [], "calls the Role does not allow (the operator would get 403)"
    assert sorted(granted - made - REQUIRED_BY_ADMISSION) == [], (
        "rights the operator never uses (remove them from the Role)"
    )
    assert granted >= REQUIRED_BY_ADMISSION
