"""Registration entries: which workloads get which SPIFFE ID, as SPIRE's server stores them.

An entry names a SPIFFE ID, the agent allowed to issue it (``parent_id``: the entry applies only
to workloads on that node) and selectors. A workload gets the entry's identity when the entry's
selectors are a *subset* of the selectors attestation found for it: an entry with
``unix:uid:0`` alone matches every root process on the node; adding ``k8s:pod-name:web`` narrows it
to one pod. Matching is set containment and nothing else, which is why entries are where
identity is won or lost.

A selector is ``type:value`` where the value may itself contain colons (``k8s:pod-label:app:web``).

    Selector            (type, value)
    RegistrationEntry   spiffe_id, parent_id, selectors, ttl; matches(workload selectors)
    EntryError          a bad entry, naming it and what is accepted
    parse_selector      "unix:uid:0" -> Selector
    load_entries        a JSON list (the CLI's --entries file) -> entries, with errors by index
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from meshlab.identity.spiffeid import SpiffeId, SpiffeIdError, parse_id

#: Selector kinds the agent's attestors produce: SPIRE's unix and k8s workload attestors.
SELECTOR_KEYS = {
    "unix": ("uid", "user", "gid", "group", "supplementary_gid", "path", "sha256"),
    "k8s": ("ns", "sa", "node-name", "pod-uid", "pod-name", "pod-label", "container-name", "container-image"),
}
DEFAULT_TTL_S = 3600
MIN_TTL_S = 1


class EntryError(ValueError):
    """A registration entry that cannot be used; the message names the entry and the rule."""


@dataclass(frozen=True, order=True)
class Selector:
    type: str
    value: str

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


def parse_selector(text: str) -> Selector:
    kind, _, value = text.partition(":")
    if kind not in SELECTOR_KEYS:
        raise EntryError(f"selector {text!r}: unknown type {kind!r}; accepted types: {', '.join(SELECTOR_KEYS)}")
    key, colon, rest = value.partition(":")
    if key not in SELECTOR_KEYS[kind] or not colon or not rest:
        keys = ", ".join(f"{kind}:{k}:VALUE" for k in SELECTOR_KEYS[kind])
        raise EntryError(f"selector {text!r} is not one of {keys}")
    return Selector(kind, value)


@dataclass(frozen=True)
class RegistrationEntry:
    spiffe_id: SpiffeId
    parent_id: SpiffeId
    selectors: frozenset[Selector]
    ttl_s: int = DEFAULT_TTL_S

    def matches(self, workload: frozenset[Selector] | set[Selector]) -> bool:
        """SPIRE's rule: every selector of the entry was found for the workload."""
        return self.selectors <= workload


def entry_from_json(item: object, parent_id: SpiffeId, where: str) -> RegistrationEntry:
    """One ``{"spiffe_id", "selectors", "ttl"}`` object (``parent_id`` optional, the agent's ID by default)."""
    if not isinstance(item, dict):
        raise EntryError(f"{where}: an entry is an object with spiffe_id, selectors and ttl, not {type(item).__name__}")
    unknown = set(item) - {"spiffe_id", "selectors", "ttl", "parent_id"}
    if unknown:
        raise EntryError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; accepted: spiffe_id, selectors, ttl, parent_id")
    try:
        spiffe_id = parse_id(str(item.get("spiffe_id", "")))
        parent = parse_id(item["parent_id"]) if "parent_id" in item else parent_id
    except SpiffeIdError as error:
        raise EntryError(f"{where}: spiffe_id {item.get('spiffe_id')!r}: {error}") from None
    if not spiffe_id.path:
        raise EntryError(f"{where}: spiffe_id {spiffe_id} has no path; a workload's ID needs one (e.g. {spiffe_id}/ns/default/sa/web)")
    if not spiffe_id.member_of(parent.trust_domain):
        raise EntryError(f"{where}: spiffe_id {spiffe_id} is not in the agent's trust domain {parent.trust_domain}")
    raw = item.get("selectors")
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        raise EntryError(f"{where}: selectors must be a non-empty list of strings such as \"unix:uid:1000\" or \"k8s:ns:default\"")
    try:
        selectors = frozenset(parse_selector(s) for s in raw)
    except EntryError as error:
        raise EntryError(f"{where}: {error}") from None
    ttl = item.get("ttl", DEFAULT_TTL_S)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < MIN_TTL_S:
        raise EntryError(f"{where}: ttl {ttl!r} must be a whole number of seconds >= {MIN_TTL_S}")
    return RegistrationEntry(spiffe_id, parent, selectors, ttl)


def load_entries(source: Path | str | list, parent_id: SpiffeId) -> list[RegistrationEntry]:
    """Entries from a JSON file (or an already parsed list); every problem names the entry's index."""
    if isinstance(source, list):
        items, name = source, "entries"
    else:
        name = str(source)
        try:
            items = json.loads(Path(source).read_text())
        except FileNotFoundError:
            raise EntryError(f"{name}: no such file") from None
        except json.JSONDecodeError as error:
            raise EntryError(f"{name}: not JSON ({error})") from None
    if not isinstance(items, list):
        raise EntryError(f"{name}: expected a JSON list of entries, got {type(items).__name__}")
    return [entry_from_json(item, parent_id, f"{name}[{index}]") for index, item in enumerate(items)]
