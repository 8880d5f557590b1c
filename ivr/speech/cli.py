"""``ivr models list | pull LANG | path LANG``: which speech models this machine has, and getting more.

``add_speech_commands(subparsers)`` adds the ``models`` command to the main ``ivr`` parser; like the
flow commands it sets ``handler``, and the main program runs ``args.handler(args)``.
"""

from __future__ import annotations

import argparse
import sys

from ivr.speech.models import ModelError, cache_root, resolve_model
from ivr.speech.pull import MODELS, PullError, bar, pull

__all__ = ["add_speech_commands"]

# Languages listed even when nothing is installed for them: the ones `pull` can fetch, and the
# one the test model package brings.
_LISTED = ("en", "de", "ko")


def add_speech_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = subparsers.add_parser("models", help="speech models: list, pull (download), path")
    commands = models.add_subparsers(dest="models_command", required=True)
    listing = commands.add_parser("list", help="the model each language resolves to, and from where")
    listing.set_defaults(handler=cmd_list)
    fetch = commands.add_parser("pull", help="download an official Vosk model into the model cache")
    fetch.add_argument("language", metavar="LANG", help=f"one of: {', '.join(sorted(MODELS))}")
    fetch.set_defaults(handler=cmd_pull)
    where = commands.add_parser("path", help="print the model directory for LANG (exit 1 if none)")
    where.add_argument("language", metavar="LANG")
    where.set_defaults(handler=cmd_path)


def cmd_list(args: argparse.Namespace) -> int:
    print(f"model cache: {cache_root()}")
    for language in sorted(set(_LISTED) | set(MODELS)):
        info = resolve_model(language)
        if info is None:
            hint = f"  (ivr models pull {language})" if language in MODELS else ""
            print(f"{language:4} -{hint}")
        else:
            print(f"{language:4} {info.source:8} {info.sample_rate} Hz  {info.path}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    try:
        path = pull(args.language, progress=bar())
    except PullError as exc:
        print(f"ivr models pull: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    try:
        info = resolve_model(args.language)
    except ModelError as exc:
        print(exc, file=sys.stderr)
        return 1
    if info is None:
        print(f"no model for {args.language}", file=sys.stderr)
        return 1
    print(info.path)
    return 0
