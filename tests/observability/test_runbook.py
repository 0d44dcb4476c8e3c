"""docs/RUNBOOK.md: every alert links to a heading of it, every in-page link resolves, and every
command it tells people to type exists: each `tenrusl` and `kubectl tenrusl` command line parses
with the real argument parsers, and kubectl and helm subcommands and long flags exist in the
installed tools' own help (when those tools are installed)."""

from __future__ import annotations

import contextlib
import functools
import io
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from tenrusl_operator.plugin import build_parser as plugin_parser

from tenrusl.cli import build_parser as tenrusl_parser
from tests.observability.promql import RUNBOOK, alerts

SHELL_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "(", ")"}
KUBECTL_VALUE_FLAGS = {"-n", "--namespace", "--context", "--kubeconfig"}
KUBECTL_SUBCOMMANDS = {"create", "rollout"}  # verbs whose next word is a subcommand
HELM_SUBCOMMANDS = {"get"}


# -- GitHub's heading anchors -------------------------------------------------------------------


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup reduced to its text, lower case, everything but
    letters, digits, spaces, hyphens and underscores dropped, spaces turned into hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _outside_fences(markdown: str) -> list[str]:
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor; a repeated slug gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in _outside_fences(markdown):
        match = re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line)
        if not match:
            continue
        slug = github_slug(match.group(1))
        n = seen.get(slug, 0)
        found.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    return found


def test_github_slugs() -> None:
    assert github_slug("TenruslRetryBacklogHigh") == "tenruslretrybackloghigh"
    assert github_slug("A. Retry storm") == "a-retry-storm"
    assert github_slug("Pause, resume and `tune` retries") == "pause-resume-and-tune-retries"
    assert anchors("# X\n## X\n```\n# not a heading\n```\n") == {"x", "x-1"}


def test_every_runbook_url_resolves_to_a_heading() -> None:
    found = anchors(RUNBOOK.read_text())
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path.endswith("/docs/RUNBOOK.md"), url
        assert anchor in found, f"{rule['alert']}: #{anchor} is no heading of docs/RUNBOOK.md"
        assert f"### {rule['alert']}\n" in RUNBOOK.read_text(), f"{rule['alert']} has no heading of its own"


def test_every_in_page_link_resolves() -> None:
    text = RUNBOOK.read_text()
    found = anchors(text)
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert len(links) > 5
    assert not [link for link in links if link not in found]


# -- commands -----------------------------------------------------------------------------------


def command_lines(markdown: str) -> list[str]:
    """Lines of the fenced code blocks (continuations joined, comments dropped), and inline code
    spans that start with a command we check. HTML comments are not shown, so not checked."""
    markdown = re.sub(r"<!--.*?-->", "", markdown, flags=re.DOTALL)
    lines: list[str] = []
    fenced, pending = False, ""
    for raw in markdown.splitlines():
        if raw.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if line and not line.startswith("#"):
                lines.append(line)
    for line in _outside_fences(markdown):
        for span in re.findall(r"`([^`]+)`", line):
            if re.match(r"(tenrusl|kubectl|helm) ", span) and span != "kubectl tenrusl":
                lines.append(span)
    return lines


def tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _until_operator(words: list[str]) -> list[str]:
    out = []
    for word in words:
        if word in SHELL_OPERATORS:
            break
        out.append(word)
    return out


def invocations(line: str) -> list[tuple[str, list[str]]]:
    """(tool, arguments) for each tenrusl, kubectl tenrusl, kubectl and helm call in the line."""
    words = tokens(line)
    found = []
    for i, word in enumerate(words):
        start = i == 0 or words[i - 1] in SHELL_OPERATORS or words[i - 1] == "--"
        if not start:
            continue
        args = _until_operator(words[i + 1 :])
        if word == "tenrusl":
            found.append(("tenrusl", args))
        elif word == "kubectl" and args[:1] == ["tenrusl"]:
            found.append(("kubectl tenrusl", args[1:]))
        elif word in ("kubectl", "helm"):
            found.append((word, args))
    return found


def _argparse_error(parser_factory: object, args: list[str]) -> str | None:
    """None when the parser accepts ``args``, else its error message."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser_factory().parse_args(args)  # type: ignore[operator]
        except SystemExit as exc:
            if exc.code not in (0, None):
                return err.getvalue().strip().splitlines()[-1] if err.getvalue() else f"exit {exc.code}"
    return None


def test_the_checker_rejects_what_does_not_exist() -> None:
    assert _argparse_error(tenrusl_parser, ["retry", "once", "--limit", "5"]) is not None
    assert _argparse_error(tenrusl_parser, ["retry", "resume"]) is not None
    assert _argparse_error(plugin_parser, ["tune", "--claim-size", "5"]) is not None
    assert _argparse_error(plugin_parser, ["pause", "--ramp-minutes", "5"]) is not None
    assert _argparse_error(tenrusl_parser, ["retry", "replay", "--status", "dead", "--dry-run"]) is None
    assert invocations("kubectl -n x exec deploy/a -- tenrusl status --json | jq .") == [
        ("kubectl", ["-n", "x", "exec", "deploy/a", "--", "tenrusl", "status", "--json"]),
        ("tenrusl", ["status", "--json"]),
    ]


def _all_invocations() -> list[tuple[str, list[str], str]]:
    calls = []
    for line in command_lines(RUNBOOK.read_text()):
        for tool, args in invocations(line):
            calls.append((tool, args, line))
    return calls


def test_every_tenrusl_command_parses() -> None:
    calls = [(tool, args, line) for tool, args, line in _all_invocations() if tool.endswith("tenrusl")]
    assert sum(tool == "tenrusl" for tool, _, _ in calls) >= 15
    assert sum(tool == "kubectl tenrusl" for tool, _, _ in calls) >= 10
    errors = []
    for tool, args, line in calls:
        error = _argparse_error(tenrusl_parser if tool == "tenrusl" else plugin_parser, args)
        if error:
            errors.append(f"{line!r}: {error}")
    assert not errors, "\n".join(errors)


def test_kubectl_plugin_calls_put_no_flag_before_the_plugin_name() -> None:
    """kubectl refuses `kubectl -n payments tenrusl ...`: flags must follow the plugin name."""
    for tool, args, line in _all_invocations():
        if tool == "kubectl":
            verb = _verb(args)
            assert verb and verb[0] != "tenrusl", line


def _verb(args: list[str], subcommands: set[str] = KUBECTL_SUBCOMMANDS) -> list[str]:
    """The subcommand words of a kubectl/helm call, past its leading global flags."""
    rest = list(args)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag in KUBECTL_VALUE_FLAGS and "=" not in flag and rest:
            rest.pop(0)
    if not rest:
        return []
    if rest[0] in subcommands and len(rest) > 1:
        return rest[:2]
    return rest[:1]


def _long_flags(args: list[str]) -> set[str]:
    before_separator = args[: args.index("--")] if "--" in args else args
    return {a.split("=", 1)[0] for a in before_separator if a.startswith("--") and len(a) > 2}


def _helm() -> str | None:
    cached = Path.home() / ".cache" / "tenrusl" / "bin" / "helm"
    return shutil.which("helm") or (str(cached) if cached.exists() else None)


@functools.cache
def _help(binary: str, *words: str) -> str:
    done = subprocess.run([binary, *words, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"`{' '.join([binary, *words])}` does not exist: {done.stderr.strip()}"
    return done.stdout


@functools.cache
def _global_help(binary: str) -> str:
    words = ["options"] if binary.endswith("kubectl") else ["--help"]
    return subprocess.run([binary, *words], capture_output=True, text=True, timeout=60).stdout


@pytest.mark.parametrize("tool", ["kubectl", "helm"])
def test_kubectl_and_helm_subcommands_and_flags_exist(tool: str) -> None:
    binary = shutil.which("kubectl") if tool == "kubectl" else _helm()
    if binary is None:
        pytest.skip(f"{tool} is not installed")
    calls = [(args, line) for t, args, line in _all_invocations() if t == tool]
    assert len(calls) >= (20 if tool == "kubectl" else 3)
    for args, line in calls:
        verb = _verb(args, KUBECTL_SUBCOMMANDS if tool == "kubectl" else HELM_SUBCOMMANDS)
        assert verb, line
        text = _help(binary, *verb) + _global_help(binary)
        for flag in _long_flags(args):
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), (
                f"{line!r}: no {flag} in `{tool} {' '.join(verb)}`"
            )
