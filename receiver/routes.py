"""Every route, in one place, each on one listener. API routes exist under ``/api`` and ``/api/v1``.

The main listener (``TENRUSL_PORT``) serves what providers and services call: webhooks, the
payments API, ``/up``, ``/ready`` and the OpenAPI document. The admin listener
(``TENRUSL_ADMIN_PORT``) serves what operators and Prometheus call: ``/metrics`` and the admin API,
with its own OpenAPI document. The chart exposes only the main port to providers.
"""

from __future__ import annotations

from aiohttp import web

from receiver import admin_events, health, openapi, payments, webhooks

PROVIDER = r"{provider:[a-z0-9][a-z0-9_\-]*}"
API_PREFIXES = (("/api/v1", "v1"), ("/api", "api"))


def setup_routes(app: web.Application) -> None:
    """The main listener."""
    for prefix, tag in API_PREFIXES:
        app.router.add_post(f"{prefix}/payments", payments.create_payment, name=f"{tag}.create_payment")
        app.router.add_get(
            f"{prefix}/payments/{{provider:[a-z0-9][a-z0-9_\\-]*}}/{{provider_ref}}/status",
            payments.get_payment_status,
            name=f"{tag}.payment_status",
        )
        app.router.add_get(f"{prefix}/payments/{{id}}", payments.get_payment, name=f"{tag}.get_payment")
        app.router.add_post(f"{prefix}/webhooks/{PROVIDER}", webhooks.receive_webhook, name=f"{tag}.webhook")
        app.router.add_route(
            "OPTIONS",
            f"{prefix}/webhooks/{PROVIDER}",
            webhooks.webhook_options,
            name=f"{tag}.webhook_options",
        )
    app.router.add_get("/api/openapi.yaml", openapi.main_document, name="openapi")
    app.router.add_get("/up", health.up, name="up")
    app.router.add_get("/ready", health.ready, name="ready")


def setup_admin_routes(app: web.Application) -> None:
    """The admin listener."""
    for prefix, tag in API_PREFIXES:
        app.router.add_get(
            f"{prefix}/admin/payments", payments.admin_list_payments, name=f"{tag}.admin_payments"
        )
        app.router.add_get(
            f"{prefix}/admin/webhook-events", admin_events.list_webhook_events, name=f"{tag}.admin_events"
        )
        app.router.add_post(
            f"{prefix}/admin/webhook-events/{{id}}/retry",
            admin_events.retry_webhook_event,
            name=f"{tag}.admin_event_retry",
        )
    app.router.add_get("/api/openapi.yaml", openapi.admin_document, name="admin_openapi")
    app.router.add_get("/metrics", health.metrics, name="metrics")
