"""ABAC: attribute-based access control, a policy as a predicate over attributes.

NIST SP 800-162 (Hu et al., "Guide to Attribute Based Access Control (ABAC) Definition and
Considerations", January 2014, updated 2019-02-25, https://doi.org/10.6028/NIST.SP.800-162)
defines ABAC as deciding an operation by evaluating attributes of the *subject*, the *object*, the
requested *operation* and, where needed, *environment conditions* against rules. A rule here is a
Boolean expression over those four; it can compare a subject's attribute with an object's
(``subject.team == object.team``), which is what neither RBAC's roles nor Istio's AuthorizationPolicy
(whose conditions compare a request attribute with constants) can do.

Rules are built from attribute references, so they print as what they say and can be counted:

    >>> rule = Rule("same team", (subject.team == object_.team) & (environment.hour < 18))
    >>> str(rule.condition)
    '(subject.team == object.team) and (environment.hour < 18)'

Combining: a request is allowed when some ``permit`` rule holds and no ``deny`` rule holds
(deny-overrides with default deny, the shape of XACML 3.0's deny-overrides and of Istio's DENY
before ALLOW). A rule that reads an attribute the request does not carry is *indeterminate*: it
never permits, and an indeterminate deny rule denies (fail closed).

    Expression      an attribute reference, a constant, a comparison, or and/or/not of expressions
    subject, object_, environment, action   the four attribute categories, as attribute factories
    MissingAttribute  raised while evaluating a rule that reads an attribute the request lacks
    AbacRequest     subject, object, action and environment attributes of one request
    Rule            a named condition with effect permit or deny
    AbacDecision    allowed, the rule that decided, the rules that were indeterminate and why
    AbacPolicy      rules; decide(request)
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

EFFECTS = ("permit", "deny")
WIDTH = 100  # the book's page (meshlab.viz.text.WIDTH): a rule longer than that prints one operand a line


class MissingAttribute(LookupError):
    """The request carries no value for an attribute a rule reads."""


class Expression:
    """Something a rule can evaluate against a request; operators build bigger expressions."""

    def evaluate(self, request: AbacRequest) -> Any:
        raise NotImplementedError

    # comparisons build expressions instead of comparing (as in SQLAlchemy or pandas)
    def __eq__(self, other: object) -> Expression:  # type: ignore[override]
        return Comparison("==", self, _wrap(other))

    def __ne__(self, other: object) -> Expression:  # type: ignore[override]
        return Comparison("!=", self, _wrap(other))

    def __lt__(self, other: Any) -> Expression:
        return Comparison("<", self, _wrap(other))

    def __le__(self, other: Any) -> Expression:
        return Comparison("<=", self, _wrap(other))

    def __gt__(self, other: Any) -> Expression:
        return Comparison(">", self, _wrap(other))

    def __ge__(self, other: Any) -> Expression:
        return Comparison(">=", self, _wrap(other))

    def is_in(self, collection: Any) -> Expression:
        """Membership: ``subject.team.is_in(["payments", "search"])`` or ``object_.team.is_in(subject.teams)``."""
        return Comparison("in", self, _wrap(collection))

    def __and__(self, other: Expression) -> Expression:
        return Logical.of("and", self, _wrap(other))

    def __or__(self, other: Expression) -> Expression:
        return Logical.of("or", self, _wrap(other))

    def __invert__(self) -> Expression:
        return Logical("not", (self,))

    def __bool__(self) -> bool:
        raise TypeError("an ABAC expression has no truth value until evaluated: combine with & | ~, not and/or/not")

    __hash__ = object.__hash__


@dataclass(frozen=True, eq=False)
class Attribute(Expression):
    category: str
    name: str | None = None  # None: the category is the value itself (the action)

    def evaluate(self, request: AbacRequest) -> Any:
        if self.name is None:
            return request.action
        values = getattr(request, self.category)
        if self.name not in values:
            raise MissingAttribute(f"{self} is not among the request's {self.category} attributes ({', '.join(sorted(values)) or 'none'})")
        return values[self.name]

    def __str__(self) -> str:
        return self.category if self.name is None else f"{self.category}.{self.name}"


@dataclass(frozen=True, eq=False)
class Constant(Expression):
    value: Any

    def evaluate(self, request: AbacRequest) -> Any:
        return self.value

    def __str__(self) -> str:
        return repr(sorted(self.value)) if isinstance(self.value, (set, frozenset)) else repr(self.value)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "in": lambda left, right: left in right,
}


@dataclass(frozen=True, eq=False)
class Comparison(Expression):
    op: str
    left: Expression
    right: Expression

    def evaluate(self, request: AbacRequest) -> bool:
        left, right = self.left.evaluate(request), self.right.evaluate(request)
        try:
            return bool(_COMPARE[self.op](left, right))
        except TypeError as error:
            raise TypeError(f"cannot evaluate {self}: {left!r} {self.op} {right!r} ({error})") from None

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True, eq=False)
class Logical(Expression):
    op: str
    operands: tuple[Expression, ...]

    @classmethod
    def of(cls, op: str, left: Expression, right: Expression) -> Logical:
        """``a & b & c`` as one "and" of three, so it prints without nested parentheses."""
        operands = [e for side in (left, right) for e in (side.operands if isinstance(side, Logical) and side.op == op else (side,))]
        return cls(op, tuple(operands))

    def evaluate(self, request: AbacRequest) -> bool:
        if self.op == "not":
            return not self.operands[0].evaluate(request)
        combine = all if self.op == "and" else any
        return combine(operand.evaluate(request) for operand in self.operands)

    def __str__(self) -> str:
        if self.op == "not":
            return f"not {_operand(self.operands[0])}"
        return f" {self.op} ".join(_operand(operand) for operand in self.operands)


def _operand(expression: Expression) -> str:
    """An operand as written inside a larger expression: compound ones in parentheses."""
    return f"({expression})" if isinstance(expression, (Comparison, Logical)) else str(expression)


def _wrap(value: Any) -> Expression:
    return value if isinstance(value, Expression) else Constant(value)


class _Category:
    """``subject.team`` is the attribute ``team`` of the subject."""

    def __init__(self, category: str) -> None:
        self._category = category

    def __getattr__(self, name: str) -> Attribute:
        if name.startswith("_"):
            raise AttributeError(name)
        return Attribute(self._category, name)

    def __getitem__(self, name: str) -> Attribute:
        return Attribute(self._category, name)


subject = _Category("subject")
object_ = _Category("object")
environment = _Category("environment")
action = Attribute("action")


@dataclass(frozen=True)
class AbacRequest:
    subject: Mapping[str, Any]
    action: str
    object: Mapping[str, Any]
    environment: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    name: str
    condition: Expression
    effect: str = "permit"

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise ValueError(f"rule {self.name!r}: effect {self.effect!r} is not one of {', '.join(EFFECTS)}")
        if not isinstance(self.condition, Expression):
            raise TypeError(f"rule {self.name!r}: the condition must be an expression over subject, object_, action and "
                            f"environment attributes, not {type(self.condition).__name__}")

    def __str__(self) -> str:
        """One line when short; otherwise the top-level operands one per line, so it reads in 100 columns."""
        line = f"{self.effect} {self.name!r} if {self.condition}"
        condition = self.condition
        if len(line) <= WIDTH or not (isinstance(condition, Logical) and condition.op in ("and", "or")):
            return line
        return f"{self.effect} {self.name!r} if\n    " + f"\n    {condition.op} ".join(_operand(o) for o in condition.operands)


@dataclass(frozen=True)
class AbacDecision:
    allowed: bool
    rule: str | None
    indeterminate: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # for each indeterminate rule, the attribute it could not read

    def __bool__(self) -> bool:
        return self.allowed


class AbacPolicy:
    """Permit and deny rules, combined deny-overrides with default deny."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = list(rules)
        for rule in self.rules:
            if not isinstance(rule, Rule):
                raise TypeError(f"an AbacPolicy holds Rule objects, not {type(rule).__name__}")

    def decide(self, request: AbacRequest) -> AbacDecision:
        holding: dict[str, list[str]] = {"permit": [], "deny": []}
        indeterminate, missing = [], []
        for rule in self.rules:
            try:
                if rule.condition.evaluate(request):
                    holding[rule.effect].append(rule.name)
            except MissingAttribute as error:
                indeterminate.append(rule.name)
                missing.append(str(error))
                if rule.effect == "deny":
                    holding["deny"].append(rule.name)
        decided = holding["deny"] or holding["permit"] or [None]
        return AbacDecision(not holding["deny"] and bool(holding["permit"]), decided[0], tuple(indeterminate), tuple(missing))

    def attributes(self) -> set[str]:
        """Every attribute the rules read, e.g. ``{"subject.team", "object.team"}``."""
        found: set[str] = set()

        def walk(expression: Expression) -> None:
            if isinstance(expression, Attribute):
                found.add(str(expression))
            elif isinstance(expression, Comparison):
                walk(expression.left)
                walk(expression.right)
            elif isinstance(expression, Logical):
                for operand in expression.operands:
                    walk(operand)

        for rule in self.rules:
            walk(rule.condition)
        return found

    def __str__(self) -> str:
        return "\n".join(str(rule) for rule in self.rules)
