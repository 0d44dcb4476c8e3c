"""The webhook receiver: an aiohttp service (payments API, webhook gate, health, metrics)."""
