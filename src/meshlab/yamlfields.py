"""The checks every reader of a Kubernetes-style YAML resource makes before it looks at meanings.

Each reader (Istio's Sidecar, TSB's hierarchy, Istio's WorkloadGroup, ...) refuses bad input with its
own error class, naming where (the resource and field path) and what is accepted; these functions make
the shape checks once, raising the reader's class.

    mapping      a field that must be a mapping (absent: empty)
    known        every key of a mapping among the accepted ones
    string_map   a mapping of strings to strings (labels, annotations)
    string_list  a list of non-empty strings
"""

from __future__ import annotations

from collections.abc import Iterable


def mapping(value: object, where: str, error: type[ValueError]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise error(f"{where}: expected a mapping, got {value!r}")
    return value


def known(values: dict, accepted: Iterable[str], where: str, error: type[ValueError], what: str = "unknown field") -> None:
    """``what`` names a key that is not accepted ("unknown field"; a reader of an API it models in part may
    say "untranslated field")."""
    accepted = tuple(accepted)
    for key in values:
        if key not in accepted:
            raise error(f"{where}: {what} {key!r}; accepted: {', '.join(accepted)}")


def string_map(value: object, where: str, error: type[ValueError]) -> dict[str, str]:
    values = mapping(value, where, error)
    for key, item in values.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise error(f"{where}: keys and values are strings, got {key!r}: {item!r}")
    return dict(values)


def string_list(value: object, where: str, error: type[ValueError]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise error(f"{where}: expected a list of non-empty strings, got {value!r}")
    return tuple(value)
