"""Typed parsing of Kubernetes-style YAML into frozen dataclasses, checking the API's own constraints.

A model dataclass (``meshlab.gateway.resources``) declares each field's JSON name and the limits its
CRD sets (``api(...)``: required, default, enum, minimum/maximum, length, items, pattern, a list's
map key); ``parse`` reads a mapping into it and refuses, with the field path and what is accepted,
anything the declarations do not allow: an unknown field, a wrong type, a missing required field, a
value off the enum or past a limit. A class may add checks across its fields (``problems``, the
CRD's CEL rules) and list the API's fields meshlab knows but does not model (``IGNORED``): those are
accepted, left out of the model and reported as notes, so a valid manifest is never refused for
using them.

    GatewayAPIError   bad input: names the resource, the field path and what is accepted
    Pattern           a regular expression a string must match, with a description for messages
    Api               one field's JSON name and constraints
    api               a dataclass field carrying an Api
    Where             the resource and field path being read (for messages), and the notes so far
    parse             mapping -> dataclass instance, checking every declared constraint
    json_name         the JSON name of a dataclass field
    model_fields      (attribute, JSON name, type, Api) of each field of a model class
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class GatewayAPIError(ValueError):
    """Input the Gateway API (or meshlab's model of it) refuses. ``str()`` reads
    ``<Kind ns/name>: <field path>: <what is wrong>; <what is accepted>``."""

    def __init__(self, resource: str, path: str, problem: str) -> None:
        self.resource, self.path, self.problem = resource, path, problem
        super().__init__(f"{resource}: {path}: {problem}" if path else f"{resource}: {problem}")


@dataclass(frozen=True)
class Pattern:
    """A regular expression a string field must match (the CRD's ``pattern``), and what it means in words."""

    regex: str
    meaning: str

    @functools.cached_property
    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.regex)


class _Missing:
    """No default: the field is absent unless the input gives it."""

    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()


@dataclass(frozen=True)
class Api:
    """A field's JSON name and the constraints its CRD declares (openAPIV3Schema keywords)."""

    name: str | None = None
    required: bool = False
    #: the CRD's default, as JSON; parsed like input when the field is absent
    default: Any = _MISSING
    enum: tuple[Any, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    pattern: Pattern | None = None
    #: for a list of objects with x-kubernetes-list-type map: the key that must be unique
    map_key: str | None = None
    #: for a list of strings with x-kubernetes-list-type set: items must be unique
    unique: bool = False


def api(**constraints: Any) -> Any:
    """A dataclass field with ``constraints`` (see ``Api``); its Python default follows from them."""
    spec = Api(**constraints)
    return field(default=None, metadata={"api": spec})


@dataclass(frozen=True)
class Where:
    """Where a value sits: the resource (``HTTPRoute default/shop``) and the field path
    (``spec.rules[0].matches[0]``); ``notes`` collects the known-but-unmodelled fields met on the way."""

    resource: str
    path: str = ""
    notes: list[str] = field(default_factory=list, compare=False)

    def at(self, key: str | int) -> Where:
        path = f"{self.path}[{key}]" if isinstance(key, int) else (f"{self.path}.{key}" if self.path else key)
        return Where(self.resource, path, self.notes)

    def error(self, problem: str) -> GatewayAPIError:
        return GatewayAPIError(self.resource, self.path, problem)


class _Checked(Protocol):
    def problems(self) -> Iterator[tuple[str, str]]: ...


def json_name(model_field: dataclasses.Field) -> str:
    spec: Api = model_field.metadata.get("api", Api())
    if spec.name:
        return spec.name
    head, *rest = model_field.name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@functools.cache
def model_fields(cls: type) -> tuple[tuple[str, str, Any, Api], ...]:
    """(python name, JSON name, type, Api) of a model class's fields, computed once per class."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, json_name(f), hints[f.name], f.metadata.get("api", Api())) for f in dataclasses.fields(cls))


def parse(cls: type[T], data: Any, where: Where) -> T:
    """``data`` (a mapping from YAML) as an instance of the model dataclass ``cls``."""
    if not isinstance(data, Mapping):
        raise where.error(f"must be a mapping (object), got {_shown(data)}")
    known = model_fields(cls)
    names = [name for _, name, _, _ in known]
    ignored: Mapping[str, str] = getattr(cls, "IGNORED", {})
    for key in data:
        if key in ignored:
            where.notes.append(f"{where.resource}: {where.at(key).path} is not modelled by meshlab ({ignored[key]})")
        elif key not in names:
            accepted = ", ".join([*names, *ignored])
            raise where.at(str(key)).error(f"unknown field; accepted fields here: {accepted}")
    values = {}
    for attr, name, hint, spec in known:
        inner = where.at(name)
        if name in data and data[name] is not None:
            values[attr] = _value(hint, data[name], spec, inner)
        elif spec.required:
            raise inner.error("is required" + (f"; one of: {_listed(spec.enum)}" if spec.enum else ""))
        elif spec.default is not _MISSING:
            values[attr] = _value(hint, spec.default, spec, inner)
        else:
            values[attr] = _empty(hint)
    instance = cls(**values)
    check: _Checked | None = instance if hasattr(instance, "problems") else None  # type: ignore[assignment]
    for relative, problem in check.problems() if check else ():
        raise (where.at(relative) if relative else where).error(problem)
    return instance


def _empty(hint: Any) -> Any:
    """The value of an absent optional field: an empty tuple or mapping for collections, else None."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        return ()
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return {}
    return None


def _value(hint: Any, data: Any, spec: Api, where: Where) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        choices = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(choices) > 1:  # int | str, as Kubernetes' IntOrString
            if type(data) not in choices:
                raise where.error(f"must be one of {', '.join(c.__name__ for c in choices)}, got {_shown(data)}")
            return data
        (hint,) = choices
        origin = typing.get_origin(hint)
    if origin is tuple:
        return _items(typing.get_args(hint)[0], data, spec, where)
    if origin in (dict, Mapping):
        return _string_map(data, spec, where)
    if dataclasses.is_dataclass(hint):
        return parse(hint, data, where)  # type: ignore[arg-type]
    if hint is datetime.datetime:
        return _timestamp(data, where)
    return _scalar(hint, data, spec, where)


def _items(item_hint: Any, data: Any, spec: Api, where: Where) -> tuple:
    if not isinstance(data, list):
        raise where.error(f"must be a list, got {_shown(data)}")
    if spec.min_items is not None and len(data) < spec.min_items:
        raise where.error(f"needs at least {spec.min_items} item(s), got {len(data)}")
    if spec.max_items is not None and len(data) > spec.max_items:
        raise where.error(f"accepts at most {spec.max_items} items, got {len(data)}")
    item_spec = dataclasses.replace(spec, min_items=None, max_items=None, map_key=None, unique=False, default=_MISSING)
    items = tuple(_value(item_hint, item, item_spec, where.at(i)) for i, item in enumerate(data))
    keys = [_key(item, spec.map_key) for item in items] if spec.map_key else list(items) if spec.unique else []
    for i, key in enumerate(keys):
        if key in keys[:i]:
            what = f"{spec.map_key} {key!r}" if spec.map_key else repr(key)
            raise where.at(i).error(f"duplicate {what}; each must be unique in this list")
    return items


def _key(item: Any, map_key: str) -> Any:
    for attr, name, _, _ in model_fields(type(item)):
        if name == map_key:
            return getattr(item, attr)
    raise AssertionError(f"{type(item).__name__} has no field {map_key}")


def _string_map(data: Any, spec: Api, where: Where) -> dict[str, str]:
    if not isinstance(data, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise where.error(f"must be a mapping of strings to strings (quote values YAML reads as numbers or booleans), got {_shown(data)}")
    return dict(data)


def _timestamp(data: Any, where: Where) -> datetime.datetime:
    """An RFC 3339 time (YAML may already have read it as a datetime); naive times are UTC."""
    if isinstance(data, str):
        try:
            data = datetime.datetime.fromisoformat(data.replace("Z", "+00:00"))
        except ValueError:
            raise where.error(f"must be an RFC 3339 time such as 2024-05-01T12:00:00Z, got {data!r}") from None
    if not isinstance(data, datetime.datetime):
        raise where.error(f"must be an RFC 3339 time such as 2024-05-01T12:00:00Z, got {_shown(data)}")
    return data if data.tzinfo else data.replace(tzinfo=datetime.timezone.utc)


def _scalar(hint: Any, data: Any, spec: Api, where: Where) -> Any:
    if hint is str:
        if not isinstance(data, str):
            hint_text = " (quote it: YAML reads true, yes, on and bare numbers as other types)" if isinstance(data, (bool, int, float)) else ""
            raise where.error(f"must be a string, got {_shown(data)}{hint_text}")
        if spec.min_length is not None and len(data) < spec.min_length:
            raise where.error(f"must be at least {spec.min_length} character(s) long, got {data!r}")
        if spec.max_length is not None and len(data) > spec.max_length:
            raise where.error(f"must be at most {spec.max_length} characters long, got {len(data)}")
        if spec.pattern and not spec.pattern.compiled.search(data):
            raise where.error(f"{data!r} is not {spec.pattern.meaning} (pattern {spec.pattern.regex})")
    elif hint is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise where.error(f"must be an integer, got {_shown(data)}")
        if spec.minimum is not None and data < spec.minimum:
            raise where.error(f"must be at least {spec.minimum}, got {data}")
        if spec.maximum is not None and data > spec.maximum:
            raise where.error(f"must be at most {spec.maximum}, got {data}")
    elif hint is bool:
        if not isinstance(data, bool):
            raise where.error(f"must be true or false, got {_shown(data)}")
    else:
        raise TypeError(f"meshlab.gateway.fields cannot parse type {hint!r}")
    if spec.enum and data not in spec.enum:
        raise where.error(f"{data!r} is not accepted; one of: {_listed(spec.enum)}")
    return data


def _listed(values: tuple[Any, ...]) -> str:
    return ", ".join(str(value) for value in values)


def _shown(data: Any) -> str:
    kind = {dict: "a mapping", list: "a list", bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    return f"{kind.get(type(data), type(data).__name__)} {data!r}"[:120]

