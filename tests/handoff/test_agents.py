"""Agents: the state table, longest-idle choice, wrap-up timeout, agents.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.handoff.agents import (
    TRANSITIONS,
    Agent,
    AgentConfigError,
    AgentEvent,
    AgentPool,
    AgentState,
    InvalidTransition,
    PoolConfig,
    load_agents,
    parse_agents,
)

YAML = """
agents:
  - name: Anna Berg
    uri: sip:anna@10.0.0.5
    languages: [de, en]
    skills: [support, billing]
  - name: Bob
    uri: sip:bob@10.0.0.6:5062
    languages: [en-GB]
    skills: [support]
  - name: Cleo
    id: cleo
    uri: sip:cleo@10.0.0.7
    languages: de
    logged_in: false
"""


def test_yaml_loads_with_states_and_normalised_languages(tmp_path: Path) -> None:
    (tmp_path / "agents.yaml").write_text(YAML)
    pool = load_agents(tmp_path / "agents.yaml", now=100.0)
    assert [a.id for a in pool] == ["anna-berg", "bob", "cleo"]
    assert pool.get("bob").languages == frozenset({"en"})
    assert pool.get("cleo").state is AgentState.OFFLINE and pool.get("bob").state is AgentState.AVAILABLE
    assert pool.working("en", "support") == 2 and pool.working("de", "billing") == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("agents: []", "expected a list"),
        ("agents: [{name: X, uri: 'http://x', languages: [en]}]", "agent 1 \\(X\\): 'uri' must be"),
        ("agents: [{name: X, uri: 'sip:x@h'}]", "'languages' must be a list"),
        ("agents: [{name: X, uri: 'sip:x@h', languages: [en], skils: [a]}]", "unknown field\\(s\\) skils"),
        (
            "agents:\n - {name: X, uri: 'sip:x@h', languages: [en]}"
            "\n - {name: X, uri: 'sip:y@h', languages: [en]}",
            "agent 2: id 'x' is used twice",
        ),
        ("agents: [{name: X, uri: 'sip:x@h', languages: [en], logged_in: maybe}]", "'logged_in' must be"),
        ("agents: [", "not valid YAML"),
    ],
)
def test_yaml_errors_name_the_agent_and_field(text: str, message: str) -> None:
    with pytest.raises(AgentConfigError, match=message):
        parse_agents(text, "agents.yaml")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError, match="cannot read"):
        load_agents(tmp_path / "nope.yaml")


def _pool() -> AgentPool:
    pool = parse_agents(YAML, now=0.0)
    pool.apply("cleo", AgentEvent.LOGIN, 5.0)
    return pool


def test_pick_is_longest_idle_with_language_and_skill() -> None:
    pool = _pool()
    pool.get("anna-berg").since = 3.0
    pool.get("bob").since = 1.0
    assert pool.pick("en", "support").id == "bob"  # type: ignore[union-attr]
    assert pool.pick("en", "support", exclude={"bob"}).id == "anna-berg"  # type: ignore[union-attr]
    assert pool.pick("de", "billing").id == "anna-berg"  # type: ignore[union-attr]
    assert pool.pick("de", None).id == "anna-berg"  # type: ignore[union-attr]
    assert pool.pick("fr", None) is None
    assert pool.pick("en", "sales") is None


def test_a_full_call_cycle_records_handle_time_and_requeues_the_agent_last() -> None:
    pool = _pool()
    pool.apply("bob", AgentEvent.RING, 10.0)
    assert pool.get("bob").state is AgentState.RESERVED
    assert pool.pick("en", "support").id == "anna-berg"  # type: ignore[union-attr]
    pool.apply("bob", AgentEvent.ANSWERED, 12.0)
    pool.apply("bob", AgentEvent.HANGUP, 200.0)
    assert pool.get("bob").state is AgentState.WRAP_UP
    assert pool.get_timer() == 260.0
    change = pool.apply("bob", AgentEvent.WRAP_UP_DONE, 230.0)
    assert change.handle_time == 218.0 and pool.get("bob").calls_handled == 1
    assert pool.get("bob").since == 230.0


def test_wrap_up_times_out_on_its_own() -> None:
    pool = parse_agents(YAML, now=0.0)
    pool.config = PoolConfig(wrap_up_timeout=30.0)
    for event, t in ((AgentEvent.RING, 1.0), (AgentEvent.ANSWERED, 2.0), (AgentEvent.HANGUP, 50.0)):
        pool.apply("bob", event, t)
    assert pool.tick(79.0) == []
    (change,) = pool.tick(80.0)
    assert change.event is AgentEvent.WRAP_UP_TIMEOUT and change.handle_time == 78.0
    assert pool.get("bob").state is AgentState.AVAILABLE and pool.get_timer() is None


def test_unanswered_rings_return_the_agent_and_repeated_ones_log_them_out() -> None:
    pool = AgentPool([Agent("a", "A", "sip:a@h", frozenset({"en"}), frozenset(), AgentState.AVAILABLE)])
    for i in range(2):
        pool.apply("a", AgentEvent.RING, float(i))
        assert pool.apply("a", AgentEvent.NO_ANSWER, i + 0.5).new is AgentState.AVAILABLE
    pool.apply("a", AgentEvent.RING, 3.0)
    assert pool.apply("a", AgentEvent.REJECTED, 3.5).new is AgentState.OFFLINE
    pool.apply("a", AgentEvent.LOGIN, 10.0)
    pool.apply("a", AgentEvent.RING, 11.0)
    assert pool.apply("a", AgentEvent.NO_ANSWER, 12.0).new is AgentState.AVAILABLE  # count restarted


def test_every_pair_outside_the_table_is_an_invalid_transition() -> None:
    for state in AgentState:
        for event in AgentEvent:
            pool = AgentPool([Agent("a", "A", "sip:a@h", frozenset({"en"}), frozenset(), state)])
            if (state, event) in TRANSITIONS:
                pool.apply("a", event, 1.0)
            else:
                with pytest.raises(InvalidTransition):
                    pool.apply("a", event, 1.0)
                assert pool.get("a").state is state
