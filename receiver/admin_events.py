"""Admin views of webhook events: list them, and "retry now" one of them.

``GET /api/v1/admin/webhook-events``: filters ``status``, ``provider``, ``q`` (our id, the
provider's event id, or the payment reference), ``received_from``/``received_to`` (date or
ISO-8601), pagination ``page``/``per_page`` (max 100); newest first.

``POST /api/v1/admin/webhook-events/{id}/retry`` (``?force=true``): makes the event due now, so
the next retry run (the CronJob, within a minute, or `tenrusl retry one`) re-processes it. The
receiver does not process it inline: retrying belongs to the runner, which owns backoff and the
attempt budget. ``received``/``failed`` events are always accepted; with ``force`` a leased
``processing`` event is released and a ``dead`` one is replayed (attempts reset, error kept in
the note). A processed event is 409.
"""

from __future__ import annotations

import logging

from aiohttp import web

from receiver.admin import require_admin
from receiver.errors import ApiError, ValidationFailed
from receiver.keys import STORE
from receiver.query_params import query_date, query_page, query_text
from receiver.resources import event_summary
from tenrusl.constants import EVENT_STATES
from tenrusl.store import EventFilter

log = logging.getLogger("tenrusl.admin")


async def list_webhook_events(request: web.Request) -> web.Response:
    require_admin(request)
    errors: dict[str, list[str]] = {}
    page = query_page(request, errors)
    status = (query_text(request, "status") or "").lower() or None
    if status and status not in EVENT_STATES:
        errors["status"] = [f"status must be one of: {', '.join(EVENT_STATES)}."]
    flt = EventFilter(
        status=status,
        provider=(query_text(request, "provider") or "").lower() or None,
        q=query_text(request, "q"),
        received_from=query_date(request, "received_from", errors, end=False),
        received_to=query_date(request, "received_to", errors, end=True),
    )
    if errors:
        raise ValidationFailed(errors)
    rows, total = await request.app[STORE].list_events(flt, page.per_page, page.offset)
    return web.json_response(page.body([event_summary(r) for r in rows], total))


async def retry_webhook_event(request: web.Request) -> web.Response:
    require_admin(request)
    event_id = request.match_info["id"]
    force = request.query.get("force", "").strip().lower() in ("1", "true", "yes")
    actor = f"admin-api:{request.remote or 'unknown'}"
    store = request.app[STORE]
    row = await store.schedule_event_now(event_id, force=force, actor=actor)
    if row is None:
        event = await store.get_event(event_id)
        if event is None:
            raise ApiError(404, "not_found", "Webhook event not found.")
        hint = "" if event.status == "processed" else " Use ?force=true to override."
        raise ApiError(409, "not_retryable", f"The event is {event.status}.{hint}")
    log.warning(
        "webhook event scheduled for retry now",
        extra={"action": "admin_retry", "webhook_event_id": event_id, "force": force, "actor": actor},
    )
    return web.json_response({"data": event_summary(row), "meta": {"scheduled": True}}, status=202)
