"""User agents that nobody here wrote, calling the IVR: baresip directly, pyVoIP through Kamailio."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.interop.baresip import baresip_call, rms
from tests.interop.kamailio import kamailio_proxy
from tests.interop.pyvoip_peer import PyVoipPeer
from tests.server import RunningServer, ivr_server

pytestmark = pytest.mark.interop


def _ended(server: RunningServer) -> list[dict[str, object]]:
    return [line for line in server.log_lines() if line.get("event") == "call ended"]


def _wait_ended(server: RunningServer, count: int = 1, timeout: float = 10.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(_ended(server)) >= count:
            break
        time.sleep(0.1)
    return _ended(server)


def test_baresip_calls_the_ivr_directly_hears_it_and_keys_arrive(tmp_path: Path) -> None:
    with ivr_server(tmp_path, rtp_base=44000) as server:
        host, port = server.address
        call = baresip_call(
            f"sip:ivr@{host}:{port}", workdir=tmp_path / "baresip", hold_s=6, digits="27#", digits_after_s=1.5
        )
        assert call.established, call.log[-2000:]
        ended = _wait_ended(server)
    assert call.recording is not None and rms(call.recording) > 100, "baresip heard the prompt"
    assert len(ended) == 1
    assert ended[0]["keys"] == "27#"
    assert int(str(ended[0]["rtp_received"])) > 50


# pyVoIP's RTP thread keeps sending on its socket after its own hang-up closed it (a bug of the
# peer, not of the IVR); that thread's exception must not fail the test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_pyvoip_phone_reaches_the_ivr_through_kamailio_where_both_are_registered(tmp_path: Path) -> None:
    with kamailio_proxy() as kamailio:
        registrar = f"sip:ivr@{kamailio.host}:{kamailio.port}"
        with ivr_server(tmp_path, "--register", registrar, "--password", "secret", rtp_base=46000) as server:
            assert kamailio.registered("ivr"), "the IVR registered with digest auth"
            registered = [line for line in server.log_lines() if line.get("event") == "registration"]
            assert registered and registered[0]["registered"] is True
            with PyVoipPeer(kamailio.host, kamailio.port, "alice", "alice") as phone:
                outcome = phone.call("ivr", hold_s=3)
            ended = _wait_ended(server)
    assert outcome.answered
    assert len(ended) == 1
    assert int(str(ended[0]["rtp_sent"])) > 50, "the IVR spoke to the pyVoIP phone"
