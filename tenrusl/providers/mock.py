"""The mock provider (demos and tests): the generic reading rules, and one rotating secret."""

from __future__ import annotations

from tenrusl.providers.base import ProviderSpec
from tenrusl.providers.config import Values

SECRET = Values(("TENRUSL_MOCK_SECRET", "MOCK_SECRET"), dev_default="changeme")


class Mock(ProviderSpec):
    name = "mock"
    variables = (SECRET,)


SPEC = Mock()
