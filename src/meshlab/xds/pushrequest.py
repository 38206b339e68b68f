"""PushRequest: what changed, why, and since when; merged as Istio 1.30.3 merges them.

Mirrors ``model.PushRequest`` (pilot/pkg/model/push_context.go, Istio 1.30.3; master, 1.31,
removed ``Full``). Merge (1.26 and later): Full and Forced are OR-ed; reasons are counted and
summed per reason, not deduplicated; ConfigsUpdated is the union, and a nil (None) set takes the
other side's set; the older Start is kept.

    PushRequest   full, configs, reasons, start_ms, forced
    merge         the merge of two requests (either may be None)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

#: Istio's reason for a push whose trigger gave none.
UNKNOWN_REASON = "unknown"


@dataclass(frozen=True)
class PushRequest:
    full: bool
    configs: frozenset[str] | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    start_ms: float = 0.0
    forced: bool = False

    def __post_init__(self) -> None:
        if not self.reasons:
            object.__setattr__(self, "reasons", {UNKNOWN_REASON: 1})

    def merge(self, other: PushRequest | None) -> PushRequest:
        if other is None:
            return self
        if self.configs is None or other.configs is None:
            configs = self.configs if other.configs is None else other.configs
        else:
            configs = self.configs | other.configs
        return PushRequest(
            full=self.full or other.full,
            configs=configs,
            reasons=dict(Counter(self.reasons) + Counter(other.reasons)),
            start_ms=min(self.start_ms, other.start_ms),
            forced=self.forced or other.forced,
        )


def merge(a: PushRequest | None, b: PushRequest | None) -> PushRequest | None:
    if a is None:
        return b
    return a.merge(b)
