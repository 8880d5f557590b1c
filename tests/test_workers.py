"""Several workers behind one SIP port: every message of a call reaches the same worker."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest

from ivr.net.workers import WorkerSet, call_id_of, decode_forward, encode_forward, owner_of
from tests.server import ivr_server
from tests.sipp_runner import SIPP_DIR, run_sipp

INVITE = (
    b"INVITE sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\n"
    b"i: abc123@host\r\nCSeq: 1 INVITE\r\n\r\n"
)


def test_call_id_found_in_long_and_compact_form_any_case() -> None:
    assert call_id_of(INVITE) == b"abc123@host"
    assert call_id_of(INVITE.replace(b"i: ", b"CALL-ID:   ")) == b"abc123@host"
    assert call_id_of(b"garbage without headers") is None


def test_every_message_of_a_call_has_the_same_owner() -> None:
    cancel = INVITE.replace(b"INVITE sip", b"CANCEL sip").replace(b"1 INVITE", b"1 CANCEL")
    assert owner_of(INVITE, 4) == owner_of(cancel, 4)
    spread = Counter(owner_of(INVITE.replace(b"abc123", str(n).encode()), 2) for n in range(1000))
    assert min(spread.values()) > 400, "Call-IDs spread evenly over the workers"


def test_forwarded_datagram_keeps_the_senders_address() -> None:
    assert decode_forward(encode_forward(INVITE, ("::1", 5062))) == (INVITE, ("::1", 5062))
    assert decode_forward(b"no separator") is None


def test_calls_a_worker_places_come_back_to_it(tmp_path: Path) -> None:
    for index in range(3):
        worker = WorkerSet(index, 3, tmp_path)
        for _ in range(20):
            invite = f"INVITE sip:agent@127.0.0.1 SIP/2.0\r\nCall-ID: {worker.new_call_id('10.0.0.1')}\r\n"
            assert owner_of(invite.encode(), 3) == index


def test_rtp_ranges_of_workers_do_not_overlap(tmp_path: Path) -> None:
    slices = [WorkerSet(i, 3, tmp_path).rtp_slice(20000, 30000) for i in range(3)]
    for (_, high_a), (low_b, _) in itertools.pairwise(slices):
        assert high_a <= low_b
    assert all(low % 2 == 0 for low, _ in slices)


@pytest.mark.sipp
def test_two_workers_share_the_calls_and_none_fails(tmp_path: Path) -> None:
    with ivr_server(tmp_path, "--workers", "2", rtp_base=38000) as server:
        result = run_sipp(
            SIPP_DIR / "uac_burst.xml",
            f"127.0.0.1:{server.address[1]}",
            calls=60,
            rate=30,
            limit=30,
            timeout=60,
        )
        assert result.ok, result.describe()
        ended = [line for line in server.log_lines() if line.get("event") == "call ended"]
    by_worker = Counter(line["worker"] for line in ended)
    assert sum(by_worker.values()) == 60
    assert set(by_worker) == {0, 1} and min(by_worker.values()) >= 15
