"""Intent matching of free-form transcripts, in English and German."""

from __future__ import annotations

from ivr.speech.intents import Intent, match_intent, normalize, tokens

ENGLISH = [
    Intent("billing", ("invoice", "bill", "billing question")),
    Intent("agent", ("agent", "talk to a person", "representative")),
    Intent("internet", ("internet", "internet down", "no connection")),
]
GERMAN = [
    Intent("rechnung", ("rechnung", "frage zur rechnung")),
    Intent("mitarbeiter", ("mitarbeiter", "mit einem menschen sprechen")),
    Intent("groesse", ("größe ändern",)),
]


def test_normalisation_spells_out_umlauts_and_drops_punctuation() -> None:
    assert normalize("Größe ÄNDERN, bitte!") == "groesse aendern bitte"
    assert normalize("GROESSE") == normalize("größe")
    assert normalize("Café  crème") == "cafe creme"
    assert tokens("상담원 연결, 부탁해요") == ["상담원", "연결", "부탁해요"]  # Hangul untouched


def test_exact_and_contained_phrases() -> None:
    exact = match_intent("Agent", ENGLISH)
    assert exact is not None and (exact.intent, exact.score, exact.method) == ("agent", 1.0, "exact")
    contained = match_intent("I would like to talk to a person please", ENGLISH)
    assert contained is not None and contained.intent == "agent" and contained.method == "contained"


def test_longer_phrase_wins_a_tie() -> None:
    match = match_intent("my internet down again", ENGLISH)
    assert match is not None and match.phrase == "internet down"


def test_word_overlap_and_coverage() -> None:
    reordered = match_intent("question billing", ENGLISH)
    assert reordered is not None and reordered.intent == "billing" and reordered.method == "overlap"
    # Extra words lower the overlap (2 of 3 words); the phrase's words all present still count.
    spread = match_intent("question about billing", ENGLISH)
    assert spread is not None and spread.intent == "billing" and spread.score == 0.9


def test_fuzzy_catches_inflections_and_misrecognitions() -> None:
    match = match_intent("invoices", ENGLISH)
    assert match is not None and match.intent == "billing" and match.method == "fuzzy"
    german = match_intent("Ich habe eine Frage zu meinen Rechnungen", GERMAN)
    assert german is not None and german.intent == "rechnung" and german.method == "fuzzy"
    colleague = match_intent("Mitarbeiterin bitte", GERMAN)
    assert colleague is not None and colleague.intent == "mitarbeiter"


def test_umlauts_match_however_they_are_spelled() -> None:
    for said in ("Groesse aendern", "größe ändern", "GRÖSSE ÄNDERN"):
        match = match_intent(said, GERMAN)
        assert match is not None and match.intent == "groesse" and match.score == 1.0


def test_nothing_under_the_threshold() -> None:
    assert match_intent("what is the weather like", ENGLISH) is None
    assert match_intent("wie wird das Wetter", GERMAN) is None
    assert match_intent("", ENGLISH) is None
    # Stop words alone are no evidence.
    assert match_intent("ich möchte bitte", GERMAN) is None
    weak = match_intent("billing", ENGLISH, threshold=1.01)
    assert weak is None
