"""The fuzz corpus replayed through the parsers, and a short coverage-guided run of each fuzzer.

The long runs are by hand (see runner.py); here every checked-in input, seeds and past findings
alike, must pass its check, and each fuzzer must get through a few seconds of new inputs.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.sip.errors import SipParseError
from ivr.sip.message import MAX_MESSAGE_SIZE, parse_message
from ivr.sip.useragent import UserAgent, UserAgentConfig
from tests.fuzz import targets

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
CHECKS = {"sip": targets.check_sip, "sdp": targets.check_sdp, "rtp": targets.check_rtp}
# Bounded so the three runs together cost well under half a minute.
RUNS = 20_000
SECONDS = 6


def corpus(kind: str) -> list[Path]:
    return sorted(path for path in (CORPUS / kind).iterdir() if path.is_file())


@pytest.mark.parametrize(
    ("kind", "path"),
    [(kind, path) for kind in CHECKS for path in corpus(kind)],
    ids=lambda v: getattr(v, "name", v),
)
def test_corpus_replays(kind: str, path: Path) -> None:
    CHECKS[kind](path.read_bytes())


def _expected(path: Path) -> str | None:
    """The outcome a seed is named for: ``expect-<400|416|505|drop|silence>-...``."""
    parts = path.name.split("-")
    return parts[1] if parts[0] == "expect" else None


@pytest.mark.parametrize("path", [p for p in corpus("sip") if _expected(p)], ids=lambda p: p.name)
def test_named_seeds_get_the_answer_they_are_named_for(path: Path) -> None:
    ua = UserAgent(UserAgentConfig(host="192.0.2.1", port=5060))
    ua.receive_datagram(path.read_bytes(), targets.PEER, 1.0)
    sent = ua.datagrams_to_send()
    expected = _expected(path)
    if expected in ("drop", "silence"):
        assert sent == []
        assert ua.dropped == (1 if expected == "drop" or "scanner" in path.name else 0)
    else:
        assert len(sent) == 1 and sent[0][0].startswith(f"SIP/2.0 {expected} ".encode()), sent


def test_oversized_message_is_513() -> None:
    # Too large for a UDP datagram, so only a stream can carry it; the framer refuses it first.
    head = b"OPTIONS sip:ivr@192.0.2.1 SIP/2.0\r\nX-Pad: "
    with pytest.raises(SipParseError) as caught:
        parse_message(head + b"a" * MAX_MESSAGE_SIZE + b"\r\n\r\n")
    assert caught.value.status == 513
    ua = UserAgent(UserAgentConfig())
    ua.receive_datagram(head + b"a" * MAX_MESSAGE_SIZE, targets.PEER, 1.0)
    assert ua.datagrams_to_send() == [] and ua.dropped == 1


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_fuzzer_finds_nothing_in_a_short_run(kind: str, tmp_path: Path) -> None:
    fresh = tmp_path / "new"  # libFuzzer adds what it finds to the first directory, not the corpus
    fresh.mkdir()
    args = [sys.executable, str(HERE / f"{kind}_fuzz.py"), str(fresh), str(CORPUS / kind)]
    if (HERE / f"{kind}.dict").exists():
        args.append(f"-dict={HERE / f'{kind}.dict'}")
    args += [f"-runs={RUNS}", f"-max_total_time={SECONDS}", f"-artifact_prefix={tmp_path}/", "-seed=1"]
    result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    found = ("crash-", "timeout-", "oom-", "leak-")
    artifacts = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(found))
    assert result.returncode == 0 and not artifacts, f"{artifacts}\n{result.stderr[-4000:]}"
    assert "Done" in result.stderr
