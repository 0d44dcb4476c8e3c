"""Names and numbers shared by every TenRusl process, each with the reason it has its value."""

from __future__ import annotations

# The provider catalogue, in the order the original lists it (docs/design-notes.md).
PROVIDERS: tuple[str, ...] = (
    "mock",
    "xendit",
    "midtrans",
    "stripe",
    "paypal",
    "paddle",
    "lemonsqueezy",
    "airwallex",
    "tripay",
    "doku",
    "dana",
    "oy",
    "payoneer",
    "skrill",
    "amazon_bwp",
)

# Payment statuses. A final status never changes again (first final wins).
PAYMENT_PENDING = "pending"
PAYMENT_SUCCEEDED = "succeeded"
PAYMENT_FAILED = "failed"
PAYMENT_STATUSES = (PAYMENT_PENDING, PAYMENT_SUCCEEDED, PAYMENT_FAILED)

# Webhook event states (docs/design-notes.md). The retry runner claims only the retryable ones.
EVENT_RECEIVED = "received"
EVENT_PROCESSING = "processing"
EVENT_PROCESSED = "processed"
EVENT_FAILED = "failed"
EVENT_DEAD = "dead"
EVENT_STATES = (EVENT_RECEIVED, EVENT_PROCESSING, EVENT_PROCESSED, EVENT_FAILED, EVENT_DEAD)
RETRYABLE_EVENT_STATES = (EVENT_RECEIVED, EVENT_PROCESSING, EVENT_FAILED)

# Retry-run outcomes (the CHECK on retry_runs.outcome). `running` until the run records its end;
# `abandoned` when it never will (killed), found by the next run once its lock or lease is gone.
RUN_RUNNING = "running"
RUN_COMPLETED = "completed"
RUN_PAUSED = "paused"
RUN_BUSY = "busy"
RUN_ERROR = "error"
RUN_ABANDONED = "abandoned"
RUN_OUTCOMES = (RUN_RUNNING, RUN_COMPLETED, RUN_PAUSED, RUN_BUSY, RUN_ERROR, RUN_ABANDONED)
FINISHED_RUN_OUTCOMES = RUN_OUTCOMES[1:]

# Column limits, kept in step with the migrations; inputs are checked against them so that an
# over-long value is a 4xx (or hashed), never a database error (docs/design-notes.md, defect 16).
MAX_EVENT_ID = 191
MAX_EVENT_TYPE = 191
MAX_PROVIDER_REF = 191
MAX_REQUEST_ID = 128
MAX_IDEMPOTENCY_KEY = 255
MAX_DESCRIPTION = 255
# PostgreSQL bigint; amounts are minor units.
MAX_AMOUNT = 9_223_372_036_854_775_807

# Postgres advisory-lock keys (any stable 64-bit numbers; named so they can be found in pg_locks).
MIGRATION_LOCK_KEY = 0x7E4E_5255_4D49_4701  # "TENRUSL MIG"
RETRY_RUN_LOCK_KEY = 0x7E4E_5255_5254_5201  # "TENRUSL RTR"
