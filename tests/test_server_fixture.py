"""The test server fixture itself: a SIP port taken before the server binds it is not a failure."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests import server as fixture


def test_a_port_taken_before_the_server_binds_it_means_another_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    held = taken.getsockname()[1]
    real = fixture.free_udp_port
    offered = iter([held])
    monkeypatch.setattr(fixture, "free_udp_port", lambda: next(offered, None) or real())
    try:
        with fixture.ivr_server(tmp_path, rtp_base=33000) as server:
            assert server.address[1] != held and server.process.poll() is None
        assert len(list(tmp_path.glob("ivr-*.log"))) == 2, "one start refused, one that served"
    finally:
        taken.close()
