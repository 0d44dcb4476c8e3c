"""``tenrusl simulate`` (signed load with duplicates and tampering) and ``tenrusl sign`` (headers for curl).

Both sign with the provider module's own ``sign`` and the secrets configured in the environment,
so what they send is exactly what the receiver is configured to accept.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import sys
import time
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import aiohttp

from receiver.providers import provider_class
from receiver.providers.base import Provider
from receiver.providers.samples import hex_id
from receiver.simulate.client import (
    DUPLICATE,
    FRESH,
    TAMPERED,
    Delivery,
    Progress,
    Redelivery,
    Result,
    Summary,
    create_payment,
    payment_status,
    plan_counts,
    render_summary,
    send_all,
    tamper,
    tamper_header,
)
from receiver.simulate.payloads import build, currency
from tenrusl.constants import PROVIDERS
from tenrusl.settings import Settings

# Token-only schemes: the body is not signed, so tampering with it cannot be detected; the
# simulator forges the token instead (and says so).
TOKEN_HEADERS = {"xendit": "x-callback-token"}


def webhook_path(base_url: str, provider: str) -> str:
    return urlsplit(base_url).path.rstrip("/") + f"/api/v1/webhooks/{provider}"


def warn_missing_credentials(
    provider: str, credentials: dict[str, str], stream: TextIO | None = None
) -> None:
    empty = sorted(k for k, v in credentials.items() if k in ("secret", "token", "private_key") and not v)
    for key in empty:
        print(
            f"warning: {provider} signing credential {key!r} is empty; set the provider's setting "
            "(docs/providers-ops.md lists them), or the receiver will reject every delivery",
            file=stream or sys.stderr,
        )


async def _references(
    session: aiohttp.ClientSession, args: argparse.Namespace, rng: random.Random, n: int
) -> list[tuple[str, int]]:
    amounts = [rng.randrange(10_000, 5_000_000, 100) for _ in range(n)]
    if not args.with_payments:
        return [(f"sim_{args.provider}_{hex_id(rng, 20)}", a) for a in amounts]
    base = args.url.rstrip("/")
    limit = asyncio.Semaphore(args.concurrency)

    async def one(amount: int) -> tuple[str, int]:
        async with limit:
            return await create_payment(session, base, args.provider, amount, currency(args.provider)), amount

    return list(await asyncio.gather(*(one(a) for a in amounts)))


def _deliveries(
    args: argparse.Namespace,
    cls: type[Provider],
    credentials: dict[str, str],
    rng: random.Random,
    refs: list[tuple[str, int]],
    tampered: int,
) -> tuple[list[Delivery], list[Delivery]]:
    path = webhook_path(args.url, args.provider)
    fresh = []
    for ref, amount in refs:
        payload = build(args.provider, rng, ref, time.time(), amount)
        signed = cls.sign(payload.body, credentials, now=time.time(), path=path)
        fresh.append(Delivery(FRESH, signed.body, signed.headers))
    forged = []
    for _ in range(tampered):
        payload = build(args.provider, rng, f"sim_{args.provider}_{hex_id(rng, 20)}", time.time())
        signed = cls.sign(payload.body, credentials, now=time.time(), path=path)
        if args.provider in TOKEN_HEADERS:
            forged.append(
                Delivery(TAMPERED, signed.body, tamper_header(signed.headers, TOKEN_HEADERS[args.provider]))
            )
        else:
            forged.append(Delivery(TAMPERED, tamper(signed.body, rng, payload.signed_field), signed.headers))
    return fresh, forged


async def run_simulation(args: argparse.Namespace, settings: Settings) -> Summary:
    cls = provider_class(args.provider)
    credentials = cls.signing_credentials(settings)
    warn_missing_credentials(args.provider, credentials)
    rng = random.Random(args.seed)
    fresh_n, duplicate_n, tampered_n = plan_counts(args.count, args.duplicate_rate, args.tamper_rate)
    summary = Summary(args.provider)
    summary.planned.update({FRESH: fresh_n, DUPLICATE: duplicate_n, TAMPERED: tampered_n})
    if args.provider in TOKEN_HEADERS and tampered_n:
        summary.notes.append(
            f"{args.provider} authenticates with a static token and signs no body bytes: "
            "tampered deliveries carry a forged token instead of a flipped body byte"
        )
    url = args.url.rstrip("/") + f"/api/v1/webhooks/{args.provider}"
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        refs = await _references(session, args, rng, fresh_n)
        fresh, forged = _deliveries(args, cls, credentials, rng, refs, tampered_n)
        first = fresh + forged
        rng.shuffle(first)
        # Duplicates go after every original has been answered, so each one is a true redelivery.
        duplicates = [
            Delivery(DUPLICATE, d.body, d.headers) for d in (rng.choice(fresh) for _ in range(duplicate_n))
        ]
        progress = Progress(args.count, None if args.progress else io.StringIO())

        def on_result(result: Result) -> None:
            summary.add(result)
            progress.step()

        redelivery = Redelivery(args.max_redeliveries, args.max_wait)
        await send_all(session, url, first, args.concurrency, on_result, redelivery)
        await send_all(session, url, duplicates, args.concurrency, on_result, redelivery)
        if args.with_payments:
            base = args.url.rstrip("/")
            statuses = await asyncio.gather(
                *(payment_status(session, base, args.provider, r) for r, _ in refs)
            )
            settled = sum(1 for s in statuses if s == "succeeded")
            summary.notes.append(f"payments created {len(refs)}, succeeded after the webhooks {settled}")
    return summary


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    if args.concurrency < 1 or args.count < 1:
        print("tenrusl simulate: --count and --concurrency must be at least 1", file=sys.stderr)
        return 2
    if args.max_redeliveries < 0 or args.max_wait < 0:
        print("tenrusl simulate: --max-redeliveries and --max-wait cannot be negative", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(run_simulation(args, settings))
    except (ValueError, RuntimeError, aiohttp.ClientError) as exc:
        print(f"tenrusl simulate: {exc}", file=sys.stderr)
        return 2
    print(render_summary(summary))
    return 0 if summary.ok else 1


def _rate(value: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError("a rate is between 0 and 1")
    return rate


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "simulate",
        help="send realistic signed webhooks (with duplicates and tampering) to a receiver",
        description=(
            "Like a provider, redelivers the same bytes after a 429 or 503 once Retry-After has passed. "
            "Exits 1 when a tampered delivery was accepted, a request failed (5xx/connection), or a "
            "delivery was still answered 429/503 when its redeliveries ran out."
        ),
    )
    parser.add_argument("provider", choices=PROVIDERS)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="receiver base URL")
    parser.add_argument("--count", type=int, default=20, help="deliveries in all (default 20)")
    parser.add_argument("--concurrency", type=int, default=4, help="parallel connections (default 4)")
    parser.add_argument("--duplicate-rate", type=_rate, default=0.0, help="share resent with the same bytes")
    parser.add_argument(
        "--tamper-rate", type=_rate, default=0.0, help="share with one byte flipped after signing"
    )
    parser.add_argument("--seed", type=int, help="seed: the same seed builds the same events")
    parser.add_argument(
        "--with-payments",
        action="store_true",
        help="create each payment through the API first, then settle it",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds")
    parser.add_argument(
        "--max-redeliveries",
        type=int,
        default=5,
        metavar="N",
        help="redeliveries of one event after a 429/503, as providers do (default 5; 0: send once)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="longest wait before one redelivery, whatever Retry-After asks (default 30)",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(handler=_simulate)


def _sign(args: argparse.Namespace, settings: Settings) -> int:
    body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    cls = provider_class(args.provider)
    credentials = cls.signing_credentials(settings)
    warn_missing_credentials(args.provider, credentials)
    path = args.path or f"/api/v1/webhooks/{args.provider}"
    try:
        delivery = cls.sign(body, credentials, now=time.time(), path=path)
    except (ValueError, KeyError) as exc:
        print(f"tenrusl sign: cannot sign for {args.provider}: {exc}", file=sys.stderr)
        return 2
    if delivery.body != body:
        if not args.out:
            print(
                f"tenrusl sign: {args.provider} signs inside the body; give --out FILE for the signed body",
                file=sys.stderr,
            )
            return 2
        Path(args.out).write_bytes(delivery.body)
        print(f"signed body written to {args.out}: send it with --data-binary @{args.out}", file=sys.stderr)
    elif args.out:
        Path(args.out).write_bytes(delivery.body)
    for name, value in delivery.headers.items():
        print(f"{name}: {value}")
    return 0


def register_sign(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "sign",
        help="print the signature headers for a webhook body (one 'Name: value' per line, for curl -H)",
        description="Midtrans, Skrill and Paddle Classic sign inside the body: --out gets the signed body.",
    )
    parser.add_argument("provider", choices=PROVIDERS)
    parser.add_argument("file", help="the body to sign, or - for stdin")
    parser.add_argument(
        "--path", help="the webhook path the provider signs (default /api/v1/webhooks/PROVIDER)"
    )
    parser.add_argument("--out", help="write the (signed) body here")
    parser.set_defaults(handler=_sign)
