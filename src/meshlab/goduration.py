"""Go's duration strings, the form Istio's environment variables and ProxyConfig fields take
(PILOT_DEBOUNCE_AFTER=100ms, MINIMUM_DRAIN_DURATION=5s, terminationDrainDuration: 1m30s).

Read as Go's ``time.ParseDuration`` reads them: one or more decimal numbers each with a unit (ns, us or
µs, ms, s, m, h), or a bare "0". No sign here: none of the settings meshlab reads can be negative.

    seconds   "100ms", "1.5s", "1m30s", "0" -> seconds; anything else refused with examples
"""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(text: str) -> float:
    """A Go duration in seconds; ValueError naming the text and what is accepted."""
    if text == "0":
        return 0.0
    parts = _PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"{text!r} is not a Go duration such as 5s, 100ms or 1m30s (a number and a unit: ns, us, ms, s, m, h)")
    return sum(float(number) * _UNIT_S[unit] for number, unit in parts)
