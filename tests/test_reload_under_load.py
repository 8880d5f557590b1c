"""Editing a flow while calls run: no call dropped, new calls get the new version, a broken
edit is refused with the validator's message and the last good version keeps serving."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.server import REPO, ivr_server
from tests.sipp_runner import SIPP_DIR, start_sipp

pytestmark = pytest.mark.sipp

OLD = "Welcome to the demo line."
NEW = "Welcome to the edited demo line."


def test_flow_edits_while_calls_run(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "flows", flows)
    demo = flows / "demo.yaml"
    with ivr_server(tmp_path, "--flows", str(flows), "--reload-interval", "0.2", rtp_base=48000) as server:
        target = f"127.0.0.1:{server.address[1]}"
        with start_sipp(SIPP_DIR / "uac_burst.xml", target, calls=60, rate=10, limit=20, timeout=60) as load:
            time.sleep(2.0)
            demo.write_text(demo.read_text().replace(OLD, NEW))
            time.sleep(1.0)
            # A broken edit: the step the flow starts at no longer exists.
            demo.write_text(demo.read_text().replace("start: greeting", "start: greting"))
            server.process.send_signal(signal.SIGHUP)
            result = load.wait()
        assert result.ok, result.describe()
        assert result.successful == 60
        lines = server.log_lines()
    rejected = [line for line in lines if line.get("event") == "flow rejected"]
    assert rejected and any("greting" in error for error in rejected[-1]["errors"])
    assert rejected[-1]["still_serving"] is True
    greetings = [line["text"] for line in lines if line.get("event") == "say" and "Welcome" in line["text"]]
    assert len(greetings) == 60
    # Calls started before the edit finished on the old version; every later one got the new one,
    # including those after the broken edit (the last good version).
    first_new = greetings.index(NEW)
    assert first_new > 0
    assert set(greetings[:first_new]) == {OLD} and set(greetings[first_new:]) == {NEW}
    ended = [line for line in lines if line.get("event") == "call ended"]
    assert len(ended) == 60 and all(line["ended_by"] == "remote" for line in ended)
