"""TenRusl core: settings, logging, database pool, migrations and the event store."""

__version__ = "0.1.0"
