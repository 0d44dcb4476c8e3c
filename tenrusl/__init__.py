"""TenRusl core: settings, logging, database pool, migrations and the event store."""

from tenrusl.version import code_version

# The one home of the version is the package metadata (pyproject.toml, [project] version).
__version__ = code_version()
