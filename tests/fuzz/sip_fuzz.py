"""Fuzz `targets.check_sip`: `python tests/fuzz/sip_fuzz.py tests/fuzz/corpus/sip -runs=N`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.runner import main

if __name__ == "__main__":
    main("check_sip")
