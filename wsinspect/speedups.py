"""Which hot path runs: the compiled module (wsinspect._speedups) when it was built
and WSINSPECT_NO_EXTENSIONS is not set, else the pure-Python reference.

The modules that have a compiled twin of a function (frames.unmask,
packet.tcp_fields) choose it here, once, at import; importing the extension is a
shared-library load, cheap enough for ``read``'s start-up.
"""

from __future__ import annotations

import os
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("WSINSPECT_NO_EXTENSIONS", "") not in ("", "0"):
        return None
    try:
        from wsinspect import _speedups
    except ImportError:  # not built: no compiler at install time, or a source checkout
        return None
    return _speedups


compiled: ModuleType | None = _load()


def path_name() -> str:
    """What ``wsinspect --version`` says of the hot path in use."""
    return "compiled hot path" if compiled is not None else "pure Python"
