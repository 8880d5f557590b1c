"""Run one check from ``targets`` under atheris (libFuzzer), coverage-guided over ``ivr``.

The scripts beside this file name their check and call ``main``; every libFuzzer flag works:

    python tests/fuzz/sip_fuzz.py tests/fuzz/corpus/sip -runs=20000

libFuzzer writes new inputs it finds interesting into the *first* corpus directory, so pass a
scratch directory first when the checked-in corpus should stay as it is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import atheris

REPO = Path(__file__).resolve().parents[2]


def main(check_name: str) -> None:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # run as a script: make ``tests.fuzz`` importable
    # Only the project is instrumented: coverage of numpy or the standard library guides nothing.
    with atheris.instrument_imports(include=["ivr"]):
        from tests.fuzz import targets
    check: Callable[[bytes], object] = getattr(targets, check_name)
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()
