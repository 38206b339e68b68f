"""Lab 01's checks recognise the usual mistakes and say which one was made."""

from __future__ import annotations

import networkx as nx
import pytest

from meshlab.check import CheckFailed, lab01


def test_right_answers_pass():
    lab01.check_blast_radius(lambda graph, service: set(nx.ancestors(graph, service)))
    lab01.check_request_success(lambda graph, service, a: a ** (1 + len(nx.descendants(graph, service))))


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda g, s: set(nx.ancestors(g, s)) | {s}, "The failed service itself is not in its blast radius"),
        (lambda g, s: set(nx.descendants(g, s)), "A failure travels upstream, to its callers"),
        (lambda g, s: set(g.predecessors(s)), "You counted only direct callers"),
        (lambda g, s: list(nx.ancestors(g, s)), "must return a set of service names, got list"),
        (lambda g, s: set(), "got {}, expected {"),
    ],
)
def test_blast_radius_mistakes_get_their_hint(answer, hint):
    with pytest.raises(CheckFailed, match=hint.replace("{", r"\{")):
        lab01.check_blast_radius(answer)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda g, s, a: a ** len(nx.descendants(g, s)), "The service you call must be up too"),
        (lambda g, s, a: a ** (1 + g.out_degree(s)), "You counted only direct callees"),
        (lambda g, s, a: a * (1 + len(nx.descendants(g, s))), "a \\*\\* n, not a \\* n"),
        (lambda g, s, a: 1, "must return a float, got int"),
    ],
)
def test_request_success_mistakes_get_their_hint(answer, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab01.check_request_success(answer)


def test_an_unanswered_stub_is_reported_as_not_answered():
    def blast_radius(graph, service):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="blast_radius is not answered yet"):
        lab01.check_blast_radius(blast_radius)
