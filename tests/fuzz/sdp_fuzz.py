"""Fuzz `targets.check_sdp`: `python tests/fuzz/sdp_fuzz.py tests/fuzz/corpus/sdp -runs=N`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.runner import main

if __name__ == "__main__":
    main("check_sdp")
