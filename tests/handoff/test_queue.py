"""The virtual queue: one line for live callers and callbacks, ordered by entry time."""

from __future__ import annotations

from ivr.handoff.agents import Agent, AgentState
from ivr.handoff.estimator import WaitEstimate, estimate_wait
from ivr.handoff.queue import QueueConfig, RemoteWaiter, VirtualQueue

EN = Agent("a", "A", "sip:a@h", frozenset({"en"}), frozenset({"support"}), AgentState.AVAILABLE)


def test_a_callback_keeps_the_callers_place_in_line() -> None:
    q = VirtualQueue()
    q.join("early", 0.0, "en", "support")
    q.join("me", 10.0, "en", "support")
    q.join("later", 20.0, "en", "support")
    q.to_callback("me", callback_id=7)  # booked at t=30 after waiting since t=10
    q.join("after-booking", 40.0, "en", "support")
    assert [e.key for e in q] == ["early", "callback:7", "later", "after-booking"]
    assert q.position("callback:7", 50.0) == 2
    assert q.position("later", 50.0) == 3
    assert q.next_for(EN, 50.0).key == "early"  # type: ignore[union-attr]
    q.leave("early")
    assert q.next_for(EN, 50.0).key == "callback:7"  # type: ignore[union-attr]


def test_a_direct_booking_enters_at_booking_time() -> None:
    q = VirtualQueue()
    q.join("waiting", 0.0, "en", "support")
    q.add_callback(3, entered_at=5.0, language="en", skill="support")
    q.join("later", 6.0, "en", "support")
    assert [e.key for e in q] == ["waiting", "callback:3", "later"]
    # A second booking from the same number keeps the earlier place.
    q.add_callback(3, entered_at=9.0, language="en", skill="support")
    assert [e.key for e in q] == ["waiting", "callback:3", "later"]


def test_lines_are_per_language_and_skill_and_future_callbacks_do_not_count() -> None:
    q = VirtualQueue()
    q.join("de1", 0.0, "de", "support")
    q.join("en-billing", 1.0, "en", "billing")
    q.add_callback(1, entered_at=2.0, language="en", skill="support", not_before=3600.0)
    q.join("en1", 3.0, "en-US", "support")
    assert q.ahead("en1", 10.0) == 0
    assert q.ahead("en1", 3600.0) == 1  # the callback's window has come: it is ahead again
    assert q.line_length("en", "support", 10.0) == 1
    assert q.next_for(EN, 10.0).key == "en1"  # type: ignore[union-attr]
    q.get("en1").skip_agents.add("a")  # type: ignore[union-attr]
    assert q.next_for(EN, 10.0) is None


def test_announcements_every_interval_and_callback_reoffered_over_the_limit() -> None:
    q = VirtualQueue(QueueConfig(announce_every=60.0, offer_callback_over=600.0, reoffer_every=300.0))
    for i in range(4):
        q.join(f"c{i}", float(i), "en", None)

    def est(entry: object, ahead: int) -> WaitEstimate:
        return estimate_wait(ahead, agents_working=1, agents_free=0, handle_time=240.0)

    assert q.get_timer() == 60.0
    assert q.announcements(59.0, est) == []
    first = q.announcements(63.0, est)
    assert [(a.key, a.position) for a in first] == [("c0", 1), ("c1", 2), ("c2", 3), ("c3", 4)]
    # c0: 240 s expected; c2: 720 s and c3: 960 s (16 min, said as twenty) are over 600 s.
    assert [a.offer_callback for a in first] == [False, False, True, True]
    assert first[0].text("en") == "You are next in line. The wait is about four minutes."
    assert first[3].text("de") == "Sie sind an Position vier. Die Wartezeit beträgt etwa zwanzig Minuten."
    second = q.announcements(125.0, est)
    assert [a.offer_callback for a in second] == [False, False, False, False]  # not again so soon
    q.leave("c0")
    third = [a for t in range(185, 400, 60) for a in q.announcements(float(t), est) if a.key == "c3"]
    assert [a.position for a in third] == [3, 3, 3, 3]
    assert [a.offer_callback for a in third] == [False, False, False, True]  # 300 s after the first offer
    assert q.get("c3").first_estimate is not None  # type: ignore[union-attr]


def test_unknown_wait_offers_the_callback() -> None:
    q = VirtualQueue(QueueConfig(announce_every=30.0))
    q.join("x", 0.0, "en", None)
    (a,) = q.announcements(30.0, lambda e, n: estimate_wait(n, 0, 0, 300.0))
    assert a.offer_callback and a.text("en") == "You are next in line. We cannot estimate the wait right now."


def test_callers_on_hold_at_other_workers_stand_in_the_same_line() -> None:
    q = VirtualQueue()
    q.join("here-late", 30.0, "en", "support")
    q.sync_remote(
        [RemoteWaiter("there-early", 10.0, "en", "support"), RemoteWaiter("there-de", 5.0, "de", None)]
    )
    # The caller held by another worker came first: ours is second in the one line, and told so.
    assert q.position("here-late", 40.0) == 2
    assert [e.key for e in q if e.line == ("en", "support")] == ["there-early", "here-late"]
    assert q.next_for(EN, 40.0).key == "there-early"  # type: ignore[union-attr]
    # Announcements are for our own callers only; theirs hear them from their worker.
    assert [a.key for a in q.announcements(1000.0, lambda e, ahead: estimate_wait(ahead, 1, 0, 300.0))] == [
        "here-late"
    ]
    # Once served there (no longer published), ours is next.
    q.sync_remote([RemoteWaiter("there-de", 5.0, "de", None)])
    assert q.position("here-late", 40.0) == 1 and "there-early" not in q
    # A published key that is one of ours stays ours.
    q.sync_remote([RemoteWaiter("here-late", 1.0, "en", "support")])
    assert q.get("here-late").kind == "live" and q.get("here-late").entered_at == 30.0  # type: ignore[union-attr]
    assert "there-de" not in q
