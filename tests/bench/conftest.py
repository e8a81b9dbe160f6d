"""The benchmark package lives at the project root (it is not installed with the app): make it
importable here, ahead of this directory, which would otherwise shadow it as a namespace package."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
