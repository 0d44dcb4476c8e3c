"""The operator on a kmock API server, for the test that scrapes its /metrics too."""

from tests.operator.conftest import cluster, kubeconfig, start_operator  # noqa: F401 (fixtures)
