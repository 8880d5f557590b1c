"""kill -9 the IVR while it keeps callback promises, restart it: every callback is completed
exactly once, no attempt is dialled twice, and nothing is lost."""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from pathlib import Path

from ivr.call.call import Call
from ivr.call.engine import Engine, EngineConfig
from ivr.handoff.numbers import approve, policy_from_flow
from ivr.speech.prompt_library import PromptLibrary
from ivr.store.base import Booking, CallbackState
from ivr.store.sqlite import SqliteStore
from tests.server import REPO, free_udp_port, ivr_server

NUMBERS = [f"+4930100000{n}" for n in range(1, 7)]


def test_callbacks_survive_kill_9_and_complete_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "ivr.db"
    store = SqliteStore(db)
    policy = policy_from_flow((r"^\+49[1-9][0-9]{6,13}$",))
    now = time.time()
    for index, raw in enumerate(NUMBERS):
        number = approve(raw, policy).e164
        store.book(Booking(number, "en", now + index, now, now + 900, max_attempts=5), now)
    store.close()

    dialled: collections.Counter[str] = collections.Counter()
    library = PromptLibrary(REPO / "audio" / "cache")

    async def customer(call: Call) -> None:  # answers like a person, then listens
        dialled[call.info.called] += 1
        await asyncio.sleep(0.3)
        await call.play(await library.text("Hello?"), interruptible=False)
        await call.wait_ended(6.0)
        call.hangup()

    async def agent(call: Call) -> None:  # listens until the IVR or the customer ends it
        await call.wait_ended(30.0)
        call.hangup()

    async def scenario() -> None:
        customers = Engine(
            EngineConfig(port=free_udp_port(), user="customer", rtp_low=63000, rtp_high=63998), customer
        )
        cport = (await customers.start())[1]
        agents_yaml = tmp_path / "agents.yaml"
        lines = ["agents:"]
        phones = []
        for index in range(2):
            phone = Engine(
                EngineConfig(
                    port=0, user=f"agent{index}", rtp_low=64000 + 500 * index, rtp_high=64498 + 500 * index
                ),
                agent,
            )
            port = (await phone.start())[1]
            phones.append(phone)
            lines.append(
                f"  - {{id: a{index}, name: a{index}, uri: 'sip:a{index}@127.0.0.1:{port}', "
                "languages: [en], skills: [support]}"
            )
        agents_yaml.write_text("\n".join(lines) + "\n")
        args = (
            "--flows",
            str(REPO / "tests" / "flows" / "handoff"),
            "--flow",
            "support",
            "--keypad-only",
            "--agents",
            str(agents_yaml),
            "--db",
            str(db),
            "--customer-uri",
            f"sip:{{number}}@127.0.0.1:{cport}",
            "--ring-timeout",
            "3",
            "--wrap-up",
            "0.5",
            "--retry-spacing",
            "1",
            "--lease",
            "4",
        )
        loop = asyncio.get_running_loop()
        # First life: killed with SIGKILL while calls to customers are under way.
        with ivr_server(tmp_path / "one", *args, rtp_base=54000) as server:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and sum(dialled.values()) < 3:
                await asyncio.sleep(0.1)
            server.process.send_signal(signal.SIGKILL)
            await loop.run_in_executor(None, server.process.wait)
        # Second life: takes over once the dead process's leases run out, and finishes.
        (tmp_path / "two").mkdir()
        with ivr_server(tmp_path / "two", *args, rtp_base=56000):
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                check = SqliteStore(db)
                states = [record.state for record in check.list_callbacks()]
                check.close()
                if all(state is CallbackState.CONNECTED for state in states):
                    break
                await asyncio.sleep(0.5)
        for engine in (customers, *phones):
            await engine.stop(0.5)

    (tmp_path / "one").mkdir()
    asyncio.run(scenario())
    store = SqliteStore(db)
    records = store.list_callbacks()
    assert len(records) == len(NUMBERS), "no callback lost"
    for record in records:
        events = [event.event for event in store.events(record.id)]
        assert record.state is CallbackState.CONNECTED, (record, events)
        assert events.count("customer_answered") == 1, events  # completed exactly once
        # Every customer dial belongs to a committed attempt of its own: none dialled twice.
        assert dialled[record.number] <= record.attempts, (record.number, dialled, events)
    # The kill really came mid-work: the second life took over callbacks the first was dialling.
    recovered = [e for r in records for e in store.events(r.id) if e.event == "lease_expired"]
    assert recovered
    store.close()
