"""NGAC (NIST's Next Generation Access Control, ANSI/INCITS 565) as a graph, and RBAC beside it.

NGAC keeps a policy as data: *policy elements* — users, user attributes, objects, object attributes
and policy classes — joined by *assignments* (a DAG: user -> user attribute -> ... -> policy class,
object -> object attribute -> ... -> policy class) and *associations* (user attribute, access
rights, object attribute). The access decision is graph reachability:

    user u may exercise right r on object o  iff  for EVERY policy class pc that contains o,
    some association (ua, rights, oa) has r in rights, u reaching ua, o reaching (or being) oa,
    and oa reaching pc.

"For every policy class" is what lets independent policies combine (a department policy AND a
region policy must both grant) without writing their product down. RBAC has one dimension (a
role): permissions that depend on a combination of attributes need one role per combination,
the role explosion ``role_explosion`` counts.

Conditions such as "only on shift" or "only from the ward" are attributes whose membership
depends on the request's context: NGAC assigns and deassigns them with obligations (event ->
response, run by its event processing point); meshlab evaluates the same membership at decision
time with ``ContextAttribute``. RBAC has no place for them: a role is held or not.

    Policy            elements, assign, associate, decide, privileges, counts
    ContextAttribute  a user attribute held only when a predicate on the context holds
    Decision          allowed, and per policy class the association that granted it (or None)
    RbacPolicy        roles, permissions, user-role assignment; decide
    hospital_example  the book's two-policy-class example
    role_explosion    RBAC roles vs NGAC elements and associations for attribute dimensions
    equivalent_pair   the same attribute policy written both ways, for checking they agree
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import networkx as nx

KINDS = ("u", "ua", "o", "oa", "pc")
#: which kinds may be assigned to which: the standard's assignment relation
ALLOWED_ASSIGNMENTS = {"u": {"ua"}, "ua": {"ua", "pc"}, "o": {"oa"}, "oa": {"oa", "pc"}, "pc": set()}


class PolicyError(ValueError):
    """A policy change the model forbids; the message names the elements and the rule."""


@dataclass(frozen=True)
class ContextAttribute:
    """A user attribute held only while ``holds(context)`` is true (e.g. on shift, on site)."""

    name: str
    holds: Callable[[dict], bool]


@dataclass(frozen=True)
class Association:
    user_attribute: str
    rights: frozenset[str]
    object_attribute: str


@dataclass
class Decision:
    allowed: bool
    granted_by: dict[str, Association | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.allowed


class Policy:
    def __init__(self) -> None:
        self.graph = nx.DiGraph()
        self.associations: list[Association] = []
        self.context_attributes: dict[str, ContextAttribute] = {}

    # -- building -------------------------------------------------------------------------------
    def add(self, kind: str, name: str) -> str:
        if kind not in KINDS:
            raise PolicyError(f"element kind {kind!r} is not one of {', '.join(KINDS)}")
        if name in self.graph and self.graph.nodes[name]["kind"] != kind:
            raise PolicyError(f"{name!r} is already a {self.graph.nodes[name]['kind']}")
        self.graph.add_node(name, kind=kind)
        return name

    def add_context_attribute(self, attribute: ContextAttribute, parent: str) -> str:
        """A user attribute whose members are the users assigned to it *while* the context allows."""
        self.add("ua", attribute.name)
        self.assign(attribute.name, parent)
        self.context_attributes[attribute.name] = attribute
        return attribute.name

    def kind(self, name: str) -> str:
        if name not in self.graph:
            raise PolicyError(f"no policy element {name!r}")
        return self.graph.nodes[name]["kind"]

    def assign(self, child: str, parent: str) -> None:
        child_kind, parent_kind = self.kind(child), self.kind(parent)
        if parent_kind not in ALLOWED_ASSIGNMENTS[child_kind]:
            allowed = ", ".join(sorted(ALLOWED_ASSIGNMENTS[child_kind])) or "nothing"
            raise PolicyError(f"cannot assign {child_kind} {child!r} to {parent_kind} {parent!r}: a {child_kind} is assigned to {allowed}")
        self.graph.add_edge(child, parent)
        if not nx.is_directed_acyclic_graph(self.graph):
            self.graph.remove_edge(child, parent)
            raise PolicyError(f"assigning {child!r} to {parent!r} would make a cycle")

    def associate(self, user_attribute: str, rights: set[str], object_attribute: str) -> None:
        if self.kind(user_attribute) != "ua" or self.kind(object_attribute) not in ("oa", "o"):
            raise PolicyError(f"an association joins a user attribute to an object attribute, not {user_attribute!r} to {object_attribute!r}")
        self.associations.append(Association(user_attribute, frozenset(rights), object_attribute))

    # -- deciding -------------------------------------------------------------------------------
    def _reach(self, start: str, context: dict) -> set[str]:
        """Everything ``start`` is contained in, skipping context attributes the context denies."""
        reached, frontier = {start}, [start]
        while frontier:
            for parent in self.graph.successors(frontier.pop()):
                attribute = self.context_attributes.get(parent)
                if parent in reached or (attribute and not attribute.holds(context)):
                    continue
                reached.add(parent)
                frontier.append(parent)
        return reached

    def decide(self, user: str, right: str, obj: str, context: dict | None = None) -> Decision:
        context = context or {}
        if self.kind(user) != "u" or self.kind(obj) != "o":
            raise PolicyError(f"a decision is about a user and an object, not {user!r} and {obj!r}")
        user_side, object_side = self._reach(user, context), self._reach(obj, context)
        classes = [name for name in object_side if self.kind(name) == "pc"]
        granted: dict[str, Association | None] = {}
        for pc in sorted(classes):
            granted[pc] = next((a for a in self.associations if right in a.rights and a.user_attribute in user_side
                                and a.object_attribute in object_side and pc in self._reach(a.object_attribute, context)), None)
        return Decision(bool(classes) and all(granted.values()), granted)

    def counts(self) -> dict[str, int]:
        """How big the policy is: elements of each kind, and associations (the grants)."""
        kinds = [kind for _, kind in self.graph.nodes(data="kind")]
        return {kind: kinds.count(kind) for kind in KINDS} | {"associations": len(self.associations)}

    def privileges(self, user: str, context: dict | None = None) -> set[tuple[str, str]]:
        """(right, object) pairs the user holds: NGAC's "policy review" question answered by the graph."""
        objects = [name for name, data in self.graph.nodes(data=True) if data["kind"] == "o"]
        rights = {right for association in self.associations for right in association.rights}
        return {(right, obj) for obj in objects for right in rights if self.decide(user, right, obj, context)}


class RbacPolicy:
    """RBAC: users hold roles; roles hold permissions (right, object). Nothing else."""

    def __init__(self) -> None:
        self.roles: dict[str, set[tuple[str, str]]] = {}
        self.user_roles: dict[str, set[str]] = {}

    def grant(self, role: str, right: str, obj: str) -> None:
        self.roles.setdefault(role, set()).add((right, obj))

    def assign(self, user: str, role: str) -> None:
        self.user_roles.setdefault(user, set()).add(role)

    def decide(self, user: str, right: str, obj: str) -> bool:
        return any((right, obj) in self.roles.get(role, ()) for role in self.user_roles.get(user, ()))


def hospital_example() -> Policy:
    """The book's example: one cardiology record in two policy classes, a ward policy (who works on
    which ward) and a confidentiality policy (who may read or write medical notes). Alice is a
    cardiology doctor, Bob a cardiology nurse, Carol a doctor on another ward."""
    policy = Policy()
    for pc in ("wards", "confidentiality"):
        policy.add("pc", pc)
    for ua, parent in (("cardiology staff", "wards"), ("doctors", "confidentiality"), ("nurses", "confidentiality")):
        policy.assign(policy.add("ua", ua), parent)
    for oa, parent in (("cardiology records", "wards"), ("medical notes", "confidentiality")):
        policy.assign(policy.add("oa", oa), parent)
    policy.associate("cardiology staff", {"read", "write"}, "cardiology records")
    policy.associate("doctors", {"read", "write"}, "medical notes")
    policy.associate("nurses", {"read"}, "medical notes")
    for user, attributes in (("alice", ["cardiology staff", "doctors"]), ("bob", ["cardiology staff", "nurses"]), ("carol", ["doctors"])):
        policy.add("u", user)
        for attribute in attributes:
            policy.assign(user, attribute)
    policy.add("o", "record-17")
    for attribute in ("cardiology records", "medical notes"):
        policy.assign("record-17", attribute)
    return policy


def role_explosion(dimensions: dict[str, int]) -> dict[str, int]:
    """Access that requires a user and an object to agree on every attribute dimension (e.g.
    department AND region AND clearance): RBAC needs a role per combination of values; NGAC needs one
    user and one object attribute per value, one policy class per dimension, one association per value."""
    values = sum(dimensions.values())
    combinations = 1
    for count in dimensions.values():
        combinations *= count
    return {"rbac_roles": combinations, "ngac_attributes": 2 * values, "ngac_policy_classes": len(dimensions), "ngac_associations": values}


def equivalent_pair(dimensions: dict[str, list[str]], users: dict[str, dict[str, str]], objects: dict[str, dict[str, str]],
                    rights: Iterable[str] = ("read",)) -> tuple[Policy, RbacPolicy]:
    """One attribute policy — a user may exercise ``rights`` on an object when they share every
    dimension's value — written as NGAC (a policy class per dimension) and as RBAC (a role per combination)."""
    rights = set(rights)
    ngac = Policy()
    for dimension, values in dimensions.items():
        ngac.add("pc", dimension)
        for value in values:
            ngac.assign(ngac.add("ua", f"{dimension}={value} (users)"), dimension)
            ngac.assign(ngac.add("oa", f"{dimension}={value} (objects)"), dimension)
            ngac.associate(f"{dimension}={value} (users)", rights, f"{dimension}={value} (objects)")
    for name, attributes in users.items():
        ngac.add("u", name)
        for dimension, value in attributes.items():
            ngac.assign(name, f"{dimension}={value} (users)")
    for name, attributes in objects.items():
        ngac.add("o", name)
        for dimension, value in attributes.items():
            ngac.assign(name, f"{dimension}={value} (objects)")
    rbac = RbacPolicy()
    for combination in itertools.product(*dimensions.values()):
        role = "+".join(combination)
        for name, attributes in objects.items():
            if tuple(attributes[d] for d in dimensions) == combination:
                for right in sorted(rights):
                    rbac.grant(role, right, name)
    for name, attributes in users.items():
        rbac.assign(name, "+".join(attributes[d] for d in dimensions))
    return ngac, rbac
