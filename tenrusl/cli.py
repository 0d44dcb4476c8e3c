"""The ``tenrusl`` command. Sub-commands come from the ``tenrusl.commands`` entry points.

Each package registers its own commands (``receiver.cli``, ``retry_job.cli``, ...), so this core
module never imports the packages that depend on it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points

from tenrusl import __version__
from tenrusl.errors import CodeTooOld, DatabaseUnavailable
from tenrusl.settings import Settings, SettingsError

EXIT_DATABASE, EXIT_CONFIGURATION = 1, 2

# A command handler receives the parsed arguments and the settings; it returns the exit code.
Handler = Callable[[argparse.Namespace, Settings], int]


def with_flags(settings: Settings, args: argparse.Namespace, fields: Mapping[str, str]) -> Settings:
    """Flags over environment: each flag given (not None) replaces its settings field.

    ``fields`` maps an argparse destination to a Settings attribute, e.g. ``{"port": "port"}``;
    declare those flags with ``default=None`` so that "not given" is told apart from a value.
    """
    changes = {
        field: getattr(args, dest) for dest, field in fields.items() if getattr(args, dest) is not None
    }
    return settings.replace(**changes) if changes else settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tenrusl",
        description="TenRusl payment-webhook platform: receiver, retry runner, operator and tools.",
    )
    parser.add_argument("--version", action="version", version=f"tenrusl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for ep in sorted(entry_points(group="tenrusl.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ModuleNotFoundError as exc:
            # Only a missing plugin module itself is tolerated (a partial install); a test checks
            # that every declared command loads.
            if exc.name and ep.value.split(":")[0].startswith(exc.name):
                print(f"tenrusl: command {ep.name!r} unavailable ({exc.name} not installed)", file=sys.stderr)
                continue
            raise
        register(commands)
    return parser


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. SIGTERM ends a command that does not handle it itself with exit 143.

    In a container the command is PID 1, and the kernel ignores signals that PID 1 left at their
    default action: without this, ``kubectl delete pod`` would wait out the whole grace period.
    The long-running commands (serve, retry, operator) install their own graceful handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    """Parse, read the settings, run the handler; the errors every command shares end here.

    A configuration error exits 2; an unreachable database, a refused login or a database whose
    schema no longer serves this version exits 1; each with one line on stderr and no traceback,
    whichever command met it.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args, Settings.from_env())
    except SettingsError as exc:
        print(f"tenrusl: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIGURATION
    except (DatabaseUnavailable, CodeTooOld) as exc:
        print(f"tenrusl {args.command}: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
