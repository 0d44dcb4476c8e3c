"""The ``tenrusl`` command. Sub-commands come from the ``tenrusl.commands`` entry points.

Each package registers its own commands (``receiver.cli``, ``retry_job.cli``, ...), so this core
module never imports the packages that depend on it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from tenrusl import __version__
from tenrusl.settings import Settings, SettingsError

# A command handler receives the parsed arguments and the settings; it returns the exit code.
Handler = Callable[[argparse.Namespace, Settings], int]


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"tenrusl: configuration error: {exc}", file=sys.stderr)
        return 2
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except SettingsError as exc:
        print(f"tenrusl: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
