"""Numbers as words, in English and German: digit by digit, cardinals, ordinals.

Words are produced here rather than left to the TTS voice so that the same prompt sounds the same
with every voice, and so tests can check what the caller will hear. Only English and German are
covered; other languages get the digits back, honestly.
"""

from __future__ import annotations

_EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DE_DIGITS = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
_SYMBOLS = {"en": {"*": "star", "#": "hash", "+": "plus"}, "de": {"*": "Stern", "#": "Raute", "+": "plus"}}


def spell_digits(text: str, lang: str) -> str:
    names = _DE_DIGITS if lang == "de" else _EN_DIGITS
    symbols = _SYMBOLS["de" if lang == "de" else "en"]
    words = [names[int(c)] if c.isdigit() else symbols.get(c, c) for c in text if not c.isspace()]
    return " ".join(w for w in words if w not in "-/.")


_EN_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_DE_ONES = (
    "null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn vierzehn fünfzehn "
    "sechzehn siebzehn achtzehn neunzehn"
).split()
_DE_TENS = "_ _ zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig".split()


def cardinal(n: int, lang: str) -> str:
    if lang == "de":
        return de_cardinal(n)
    if lang == "en":
        return en_cardinal(n)
    return str(n)


def en_cardinal(n: int) -> str:
    if n < 0:
        return "minus " + en_cardinal(-n)
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_EN_ONES[hundreds]} hundred" + (f" and {en_cardinal(rest)}" if rest else "")
    for size, word in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= size:
            high, rest = divmod(n, size)
            tail = "" if not rest else (" and " if rest < 100 else " ") + en_cardinal(rest)
            return f"{en_cardinal(high)} {word}{tail}"
    raise AssertionError("unreachable")


def de_cardinal(n: int, final: bool = True) -> str:
    # German writes numbers below a million as one word; "eins" only stands at the very end.
    if n < 0:
        return "minus " + de_cardinal(-n)
    if n == 1:
        return "eins" if final else "ein"
    if n < 20:
        return _DE_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return (f"{de_cardinal(ones, False)}und" if ones else "") + _DE_TENS[tens]
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{de_cardinal(hundreds, False)}hundert" + (de_cardinal(rest, final) if rest else "")
    if n < 10**6:
        high, rest = divmod(n, 1000)
        return f"{de_cardinal(high, False)}tausend" + (de_cardinal(rest, final) if rest else "")
    for size, one, many in ((10**9, "eine Milliarde", "Milliarden"), (10**6, "eine Million", "Millionen")):
        if n >= size:
            high, rest = divmod(n, size)
            head = one if high == 1 else f"{de_cardinal(high)} {many}"
            return head + (f" {de_cardinal(rest)}" if rest else "")
    raise AssertionError("unreachable")


_EN_ORDINALS = {1: "first", 2: "second", 3: "third", 5: "fifth", 8: "eighth", 9: "ninth", 12: "twelfth"}


def en_ordinal(n: int) -> str:
    if n in _EN_ORDINALS:
        return _EN_ORDINALS[n]
    if n > 20 and n % 10:
        tens = _EN_TENS[n // 10]
        return f"{tens}-{en_ordinal(n % 10)}"
    word = en_cardinal(n)
    return word[:-1] + "ieth" if word.endswith("y") else word + "th"


def de_ordinal(n: int) -> str:
    """Nominative ordinal after "der": "der erste", "der dritte", "der zwanzigste"."""
    special = {1: "erste", 3: "dritte", 7: "siebte", 8: "achte"}
    if n in special:
        return special[n]
    return de_cardinal(n) + ("ste" if n >= 20 else "te")


def digits_apart(number: str) -> str:
    """'+4930123' as '4 9 3 0 1 2 3', so that the voice reads a phone number digit by digit."""
    return " ".join(number.lstrip("+"))
