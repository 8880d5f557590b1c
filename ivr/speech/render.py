"""``ivr prompts render FLOW...``: render every static prompt of the flows ahead of time.

Prompts with variables are rendered at call time (off the event loop) and cached; the rest can be
made ready before a release, so the first caller after a deploy waits for nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ivr.flow.validate import check_file
from ivr.serve import static_prompts
from ivr.speech.prompt_library import PromptLibrary


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
