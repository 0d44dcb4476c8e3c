"""`tenrusl retry once|run|one|replay|unlock|schedule` and `tenrusl status`.

Exit codes: 0 the command did its work (a run that was busy or paused, or whose events failed,
also did its work); 1 the database is unreachable, refused the login, or its schema no longer
serves this version (the `tenrusl` command reports it for every
handler); 2 the configuration, the policy or an argument is invalid;
3 `retry one` could not claim the event (missing, processed, not due, leased or dead without
``--force``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from retry_job.backoff import Backoff, format_table, human
from retry_job.lock import REDIS_LOCK_KEY, force_unlock
from retry_job.policy import ResolvedPolicy, explain_policy, resolve_policy
from retry_job.runner import EXIT_DB, EXIT_POLICY, RUN_CONNECTIONS, RUNNER_SESSION, Runner, RunOptions
from tenrusl.compat import require_compatible
from tenrusl.constants import RETRY_RUN_LOCK_KEY
from tenrusl.db import open_pool
from tenrusl.errors import DatabaseUnavailable
from tenrusl.logs import configure_logging
from tenrusl.policy import KNOBS, PolicyError, effective_cap, format_time, ramp_ends_at
from tenrusl.providers import check_provider_settings
from tenrusl.settings import Settings
from tenrusl.store import ReplayFilter, Store

EXIT_NOT_CLAIMED = 3
T = TypeVar("T")

HELP_ONCE = "one retry run with the effective policy (the CronJob's command)"
HELP_RUN = "one retry run; flags override the policy for this run only"
HELP_ONE = 'claim and re-process one event now (admin "retry now")'
HELP_FORCE = (
    "claim even if not due, leased by another run, or dead; attempts may then exceed maxAttempts "
    "(one extra attempt per --force; if it fails again the event is dead again)"
)
HELP_REPLAY = "bring dead (or failed) events back: status failed, attempts 0, due now"
HELP_UNLOCK = f"delete the Redis run lock ({REDIS_LOCK_KEY}) left by a crashed run"
HELP_SCHEDULE = "print the expected delay of every attempt under the effective policy"
HELP_STATUS = (
    "the effective retry policy and where each value comes from, events by state, the due backlog "
    "and its age, running and abandoned runs, the last runs"
)


def _actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a bare container
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def _when(value: str) -> datetime:
    """An ISO-8601 timestamp (UTC when no zone) or a date (midnight UTC)."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date or ISO-8601 timestamp") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _providers(value: str) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in value.split(",") if p.strip())


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """RetryPolicy overrides from `retry run`/`schedule` flags (see _policy_flags); absent ones are None."""
    flags = {knob.field: getattr(args, knob.field, None) for knob in KNOBS if knob.file_key}
    return {**flags, "providers": getattr(args, "provider", None)}


def _with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work`` on a small pool. DatabaseUnavailable goes up to `tenrusl`, which exits 1."""

    async def main() -> T:
        # A run's connections: the claim's and the settles' in flight (RUN_CONNECTIONS); the
        # advisory lock, when used, opens its own.
        async with open_pool(
            settings.replace(db_pool_min=1, db_pool_max=RUN_CONNECTIONS), session=RUNNER_SESSION
        ) as pool:
            store = Store(pool)
            await _refuse_an_incompatible_schema(store)
            return await work(store)

    return asyncio.run(main())


async def _refuse_an_incompatible_schema(store: Store) -> None:
    """CodeTooOld (`tenrusl` exits 1) when a newer release's schema no longer serves this version.

    An unreachable database is left to the work, which reports it its own way (a run records it).
    """
    try:
        compat = await store.compatibility()
    except DatabaseUnavailable:
        return
    require_compatible(compat)


# -- retry once / run -----------------------------------------------------------------------------


def _run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_level)
    check_provider_settings(settings)  # a bad provider setting stops the run before it claims
    flags = _flags(args)
    if getattr(args, "dry_run", False):
        return _dry_run(settings, flags)
    options = RunOptions(
        trigger=args.trigger,
        flags=flags,
        time_budget_s=getattr(args, "time_budget", None) or RunOptions.time_budget_s,
    )

    async def work(store: Store) -> int:
        runner = Runner(settings, store, options)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        result = await runner.run()
        print(result.summary)
        if result.error:
            print(f"tenrusl retry: {result.outcome}: {result.error}", file=sys.stderr)
        return result.exit_code

    return _with_store(settings, work)


def _dry_run(settings: Settings, flags: dict[str, Any]) -> int:
    now = datetime.now(UTC)
    try:
        resolved = explain_policy(settings, flags)
    except PolicyError as exc:
        print(f"tenrusl retry: bad policy: {exc}", file=sys.stderr)
        return EXIT_POLICY
    policy, cap = resolved.policy, effective_cap(resolved.policy, now)

    async def work(store: Store) -> int:
        print("\n".join(policy_lines(resolved, now)))
        if policy.paused:
            print("dry run: the policy is paused; a run would claim nothing")
            return 0
        due = await store.peek_due_events(limit=min(policy.batch_size, cap), providers=policy.providers)
        print(f"dry run: a run would handle at most {cap} event(s), in claims of {policy.batch_size}")
        for row in due:
            print(f"  {row['id']}  {row['provider']:<12} {row['status']:<10} attempts={row['attempts']}")
        print(f"dry run: the first batch would claim {len(due)} event(s)")
        return 0

    return _with_store(settings, work)


# -- retry one ------------------------------------------------------------------------------------


def _one(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_level)
    check_provider_settings(settings)

    async def work(store: Store) -> int:
        runner = Runner(settings, store, RunOptions(trigger="manual-one"))
        result, outcome = await runner.process_one(args.event_id, force=args.force)
        if result.exit_code:
            print(f"tenrusl retry: {result.outcome}: {result.error}", file=sys.stderr)
            return result.exit_code
        print(result.summary)
        if outcome is not None:
            event = await store.get_event(args.event_id)
            if event is not None:
                print(f"event {event.id}: status={event.status} attempts={event.attempts}")
            return 0
        event = await store.get_event(args.event_id)
        if event is None:
            reason = "no such event"
        elif event.status == "processed":
            reason = "already processed"
        elif event.status == "dead":
            reason = "dead; use `tenrusl retry replay` or --force"
        else:
            reason = f"{event.status}, not due until {event.next_retry_at}; use --force"
        print(f"tenrusl retry: event {args.event_id} not claimed: {reason}", file=sys.stderr)
        return EXIT_NOT_CLAIMED

    return _with_store(settings, work)


# -- retry replay ---------------------------------------------------------------------------------


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_level)
    flt = ReplayFilter(status=args.status, provider=args.provider, since=args.since, until=args.until)
    actor = _actor()

    async def work(store: Store) -> int:
        count = await store.replay_events(flt, actor=actor, dry_run=args.dry_run)
        if args.dry_run:
            print(f"dry run: {count} event(s) would be replayed")
            return 0
        import logging

        logging.getLogger("tenrusl.retry").warning(
            "webhook events replayed",
            extra={"action": "replay", "actor": actor, "replayed": count, **_describe(flt)},
        )
        print(f"replayed {count} event(s): now failed, attempts 0, due now")
        return 0

    return _with_store(settings, work)


def _describe(flt: ReplayFilter) -> dict[str, Any]:
    return {
        "status_filter": flt.status,
        "provider": flt.provider,
        "since": flt.since.isoformat() if flt.since else None,
        "until": flt.until.isoformat() if flt.until else None,
    }


# -- retry unlock / schedule ----------------------------------------------------------------------


def _unlock(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_level)
    if not settings.redis_url:
        print("no TENRUSL_REDIS_URL: runs use the PostgreSQL advisory lock only")
    else:
        try:
            holder = asyncio.run(force_unlock(settings))
        except Exception as exc:
            print(f"tenrusl retry: cannot reach Redis: {exc.__class__.__name__}: {exc}", file=sys.stderr)
            return EXIT_DB
        print(f"deleted {REDIS_LOCK_KEY}" + (f" (held by run {holder})" if holder else " (it was free)"))
    print(
        f"The PostgreSQL advisory lock ({RETRY_RUN_LOCK_KEY}) is released when its session ends; "
        "to end a stuck one: SELECT pg_terminate_backend(pid) FROM pg_locks "
        f"WHERE locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = {RETRY_RUN_LOCK_KEY};"
    )
    return 0


def _schedule(args: argparse.Namespace, settings: Settings) -> int:
    try:
        policy = resolve_policy(settings, _flags(args))
    except PolicyError as exc:
        print(f"tenrusl retry: bad policy: {exc}", file=sys.stderr)
        return EXIT_POLICY
    backoff = Backoff.from_policy(policy)
    head = (
        f"mode={policy.mode} baseMs={policy.base_ms} capMs={policy.cap_ms} maxAttempts={policy.max_attempts}"
    )
    if policy.schedule_ms:
        head += f" schedule={list(policy.schedule_ms)}"
    print(head + f" minDelayMs={policy.min_delay_ms}\n")
    print(format_table(backoff))
    return 0


# -- status ---------------------------------------------------------------------------------------


def _status(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    try:
        resolved: ResolvedPolicy | str = explain_policy(settings)
    except PolicyError as exc:
        resolved = str(exc)

    async def work(store: Store) -> int:
        state = await store.retry_status()
        runs = await store.recent_retry_runs(args.runs)
        if args.json:
            doc = {"policy": policy_report(resolved, now), **state, "runs": runs}
            print(json.dumps(doc, default=str, indent=2))
            return 0
        print("\n".join(policy_lines(resolved, now)))
        print("events by state:")
        for status in ("received", "processing", "failed", "processed", "dead"):
            print(f"  {status:<11} {state['events_by_status'].get(status, 0)}")
        print(f"due backlog:    {state['due']}")
        print(f"oldest due age: {human(state['oldest_due_seconds'] * 1000) if state['due'] else '-'}")
        print(f"next retry at:  {state['next_due_at'] or '-'}")
        print(f"runs running:   {state['runs_running']}")
        print(f"abandoned runs: {state['runs_abandoned_24h']} in the last 24 h (killed before they finished)")
        print("last runs:")
        for r in runs:
            took = r["finished_at"] - r["started_at"] if r["finished_at"] else None
            cap = r["cap"]
            print(
                f"  {r['started_at']:%Y-%m-%d %H:%M:%S}Z {r['outcome']:<9} {r['trigger']:<10} "
                f"CLAIMED={r['claimed']} OK={r['ok']} FAIL={r['failed']} DEAD={r['dead']} "
                f"cap={'-' if cap is None else cap} lock={r['lock_backend'] or '-'} took={_secs(took)}"
                + (f" error={r['error']}" if r["error"] else "")
            )
        if not runs:
            print("  (none yet)")
        return 0

    return _with_store(settings, work)


def policy_report(resolved: ResolvedPolicy | str, now: datetime) -> dict[str, Any]:
    """``tenrusl status --json``'s ``policy``: the effective policy, its cap now, and its sources."""
    if isinstance(resolved, str):
        return {"error": resolved}
    policy = resolved.policy
    ends = ramp_ends_at(policy)
    effective = {k: v for k, v in policy.to_file().items() if k not in ("version", "source")}
    return {
        "effective": {
            **effective,
            "minDelayMs": policy.min_delay_ms,
            "cap": effective_cap(policy, now),
            "rampEndsAt": format_time(ends) if ends and ends > now else None,
        },
        "sources": resolved.sources,
        "file": {"path": resolved.file, "state": resolved.file_state, "source": dict(policy.source) or None},
    }


def policy_lines(resolved: ResolvedPolicy | str, now: datetime) -> list[str]:
    """The text form of :func:`policy_report`: one line per field, with the layer that set it."""
    if isinstance(resolved, str):
        return [f"effective policy: INVALID: {resolved}", ""]
    report = policy_report(resolved, now)
    effective, sources, file = report["effective"], report["sources"], report["file"]
    lines = ["effective policy (what a retry run started here would use):"]
    rows: list[tuple[str, Any]] = [("paused", effective["paused"])]
    for knob in KNOBS:
        if knob.file_key:
            rows.append((knob.file_key, _dig(effective, knob.file_key)))
        else:  # environment only
            rows.append((knob.env, getattr(resolved.policy, knob.field)))
    rows += [("backoff.schedule", effective["backoff"].get("schedule") or "-")]
    rows += [("providers", ", ".join(effective["providers"]) or "all")]
    rows += [(key, effective[key]) for key in ("pausedAt", "resumedAt") if key in effective]
    for name, value in rows:
        shown = str(value).lower() if isinstance(value, bool) else value
        lines.append(f"  {name:<27} {shown!s:<16} {sources.get(name, 'default')}")
    cap = effective["cap"]
    ramp = f" (gradual resume: reaches {effective['limit']} at {effective['rampEndsAt']})"
    lines.append(f"  {'cap now':<27} {cap!s:<16} events per run" + (ramp if effective["rampEndsAt"] else ""))
    if file["state"] == "unset":
        where = "none (TENRUSL_POLICY_FILE is not set here; the retry CronJob may have one)"
    elif file["state"] == "missing":
        where = f"{file['path']} (missing: the environment's policy applies)"
    else:
        source = file["source"] or {}
        where = str(file["path"]) + (
            f" (WebhookRetryPolicy {source.get('namespace')}/{source.get('name')}, "
            f"generation {source.get('generation')})"
            if source
            else ""
        )
    lines += [f"  {'policy file':<27} {where}", ""]
    return lines


def _dig(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        node = node[part]
    return node


def _secs(delta: timedelta | None) -> str:
    return f"{delta.total_seconds():.1f}s" if delta is not None else "-"


# -- registration ---------------------------------------------------------------------------------


def _policy_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per policy-file knob, with the table's meaning and bounds as its help."""
    for knob in (k for k in KNOBS if k.file_key):
        where = f"{knob.meaning}, {knob.bounds} (policy `{knob.file_key}`)"
        if knob.choices:
            parser.add_argument(knob.flag, choices=knob.choices, help=where)
        else:
            parser.add_argument(knob.flag, type=int, help=where)
    parser.add_argument("--provider", type=_providers, help="only these providers, comma-separated")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retry = commands.add_parser("retry", help="the retry runner and its admin tools")
    sub = retry.add_subparsers(dest="retry_command", metavar="ACTION", required=True)

    once = sub.add_parser("once", help=HELP_ONCE, description=HELP_ONCE)
    once.add_argument("--trigger", default="cron", help="recorded in retry_runs.trigger (default cron)")
    once.set_defaults(handler=_run)

    run = sub.add_parser("run", help=HELP_RUN, description=HELP_RUN)
    _policy_flags(run)
    run.add_argument("--dry-run", action="store_true", help="show what the first batch would claim")
    run.add_argument("--max-events", dest="limit", type=int, help="the older name of --limit")
    run.add_argument("--time-budget", type=float, help="stop after the batch in which this many s passed")
    run.add_argument("--trigger", default="manual", help="recorded in retry_runs.trigger (default manual)")
    run.set_defaults(handler=_run)

    one = sub.add_parser("one", help=HELP_ONE, description=HELP_ONE)
    one.add_argument("event_id", metavar="EVENT_ID", help="webhook_events.id")
    one.add_argument("--force", action="store_true", help=HELP_FORCE)
    one.set_defaults(handler=_one)

    replay = sub.add_parser("replay", help=HELP_REPLAY, description=HELP_REPLAY)
    replay.add_argument("--status", choices=("dead", "failed"), default="dead", help="default dead")
    replay.add_argument("--provider", type=str.lower, help="only this provider")
    replay.add_argument("--since", type=_when, help="received at or after (date or ISO-8601)")
    replay.add_argument("--until", type=_when, help="received before (date or ISO-8601)")
    replay.add_argument("--dry-run", action="store_true", help="print the count only")
    replay.set_defaults(handler=_replay)

    unlock = sub.add_parser("unlock", help=HELP_UNLOCK, description=HELP_UNLOCK)
    unlock.set_defaults(handler=_unlock)

    schedule = sub.add_parser("schedule", help=HELP_SCHEDULE, description=HELP_SCHEDULE)
    _policy_flags(schedule)
    schedule.set_defaults(handler=_schedule)


def register_status(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser("status", help=HELP_STATUS, description=HELP_STATUS)
    status.add_argument("--runs", type=int, default=5, help="how many recent runs to show (default 5)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)


def main() -> int:
    from tenrusl.cli import main as cli_main

    return cli_main(["retry", *sys.argv[1:]])
