"""Tests for core.schedules.

`import core.schedules` needs the repository root on sys.path. pytest only puts
it there itself when tests/ is a package or the project config sets
`pythonpath`; adding it here keeps these tests runnable either way.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
