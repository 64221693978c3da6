"""Named points where a crash-safety test can SIGKILL a step (``kill -9`` at the worst moment, reproducibly).

A step calls ``crash_point(ENV, "after_x")`` between its writes; when the environment variable ``ENV`` names that
point the process kills itself with SIGKILL, leaving whatever was on disk at that moment. Unset, a call costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal


def crash_point(env: str, name: str) -> None:
    """SIGKILL this process when ``$env`` equals ``name``."""
    if os.environ.get(env) == name:
        os.kill(os.getpid(), signal.SIGKILL)
