"""Every static prompt of a flow, rendered ahead of calls: at server start and by ``ivr prompts``.

Prompts with variables are rendered at call time (off the event loop) and cached; the rest can be
made ready before a release (``ivr prompts render FLOW...``), so the first caller after a deploy
waits for nothing. ``FlowApplication.prepare`` renders the same list before a server answers.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from ivr.flow.model import Flow, Prompt
from ivr.flow.validate import check_file
from ivr.speech.prompt_library import PromptLibrary


def static_prompts(flow: Flow) -> Iterator[tuple[str, str]]:
    """(language, text) of every prompt without variables: rendered once, ahead of calls."""
    seen: set[int] = set()

    def walk(value: object) -> Iterator[tuple[str, str]]:
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, Prompt):
            for language, template in value.texts.items():
                if not template.fields:
                    yield language, template.source
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for item in dataclasses.fields(value):
                yield from walk(getattr(value, item.name))
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from walk(item)
        elif isinstance(value, Mapping):
            for item in value.values():
                yield from walk(item)

    yield from walk(flow)


def add_prompt_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prompts = subparsers.add_parser("prompts", help="render the flows' prompts to telephone audio")
    actions = prompts.add_subparsers(dest="prompts_command", required=True)
    render = actions.add_parser("render", help="render every prompt without variables, with progress")
    render.add_argument("flows", nargs="+", type=Path, metavar="FLOW")
    render.add_argument("--cache-dir", type=Path, default=Path("audio") / "cache")
    render.set_defaults(handler=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    texts: list[tuple[str, str]] = []
    for path in args.flows:
        flow, errors = check_file(path)
        for error in errors:
            print(error, file=sys.stderr)
        if flow is None:
            return 1
        texts.extend(pair for pair in static_prompts(flow) if pair not in texts)
    library = PromptLibrary(args.cache_dir)

    async def render_all() -> int:
        fresh = 0
        for done, (language, text) in enumerate(texts, 1):
            voice_path = library.tts.path_for(text, _voice(language))
            fresh += not voice_path.exists()
            await library.text(text, language)
            _progress(done, len(texts))
        return fresh

    fresh = asyncio.run(render_all())
    print(f"\n{len(texts)} prompts ready ({fresh} rendered now, {len(texts) - fresh} from the cache)")
    return 0


def _voice(language: str) -> str:
    from ivr.speech.tts import voice_for

    return voice_for(language)


def _progress(done: int, total: int, width: int = 40) -> None:
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()
