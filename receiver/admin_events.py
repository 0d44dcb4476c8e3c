"""Admin views of webhook events: list them, and "retry now" one of them.

``GET /api/v1/admin/webhook-events``: filters ``status``, ``provider``, ``q`` (our id, the
provider's event id, or the payment reference), ``received_from``/``received_to`` (date or
ISO-8601), ``needs_review`` (true: events whose payload had to be repaired to be stored, see
``payload_issues``), pagination ``page``/``per_page`` (max 100); newest first.

``POST /api/v1/admin/webhook-events/{id}/retry`` (``?force=true``; any other value than
true/false, 1/0, yes/no is a 422): makes the event due now, so
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
from receiver.query_params import query_bool, query_date, query_page, query_text
from receiver.resources import event_summary
from tenrusl.constants import EVENT_STATES
from tenrusl.storable import is_storable_text
from tenrusl.store import EventFilter

log = logging.getLogger("tenrusl.admin")


async def list_webhook_events(request: web.Request) -> web.Response:
    require_admin(request)
    errors: dict[str, list[str]] = {}
    page = query_page(request, errors)
    status = (query_text(request, "status", errors) or "").lower() or None
    if status and status not in EVENT_STATES:
        errors["status"] = [f"status must be one of: {', '.join(EVENT_STATES)}."]
    flt = EventFilter(
        status=status,
        provider=(query_text(request, "provider", errors) or "").lower() or None,
        q=query_text(request, "q", errors),
        received_from=query_date(request, "received_from", errors, end=False),
        received_to=query_date(request, "received_to", errors, end=True),
        needs_review=query_bool(request, "needs_review", errors),
    )
    if errors:
        raise ValidationFailed(errors)
    rows, total = await request.app[STORE].list_events(flt, page.per_page, page.offset)
    return web.json_response(page.body([event_summary(r) for r in rows], total))


async def retry_webhook_event(request: web.Request) -> web.Response:
    require_admin(request)
    event_id = request.match_info["id"]
    errors: dict[str, list[str]] = {}
    force = bool(query_bool(request, "force", errors))
    if errors:
        raise ValidationFailed(errors)
    if not is_storable_text(event_id):  # no stored id holds a NUL
        raise ApiError(404, "not_found", "Webhook event not found.")
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
