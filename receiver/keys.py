"""Typed application keys: everything the handlers share lives on the app under one of these."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from receiver.metrics import Metrics
from receiver.providers.base import Provider
from receiver.ratelimit import RateLimiter
from tenrusl.settings import Settings
from tenrusl.store import Store
from tenrusl.store.batch import GroupCommit

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
INGEST = web.AppKey("ingest", GroupCommit)  # webhook ingest, group-committed
METRICS = web.AppKey("metrics", Metrics)
PROVIDERS = web.AppKey("providers", dict[str, Provider])
STATE = web.AppKey("state", dict[str, Any])  # {"shutting_down": bool}
REDIS = web.AppKey("redis", aioredis.Redis)  # set only when TENRUSL_REDIS_URL is
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
