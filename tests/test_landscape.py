"""The landscape data of chapter 01: every claim dated and sourced, statuses as checked in 2026."""

from __future__ import annotations

import re

import pytest

from meshlab.landscape import ERAS, MESHES, RELATED_PROJECTS, mesh_table

#: Status facts as checked in 2026 (meshlab's reference notes, shared/reference/anchors.md).
STATUS_FACTS = {
    "Istio (ambient)": ("1.24", "Nov 2024"),
    "Linkerd": ("2.15", "Feb 2024", "edge"),
    "Consul service mesh": ("BSL 1.1", "Aug 2023"),
    "Kuma": ("CNCF sandbox",),
    "Cilium service mesh": ("sidecar-less", "SPIFFE"),
    "Traefik Mesh": ("v1.4.8", "Aug 2022"),
    "Open Service Mesh": ("archived", "July 2023"),
}


def test_the_seven_meshes_of_the_chapter():
    names = [mesh.name for mesh in MESHES]
    assert len(names) == len(set(names)) == 8  # Istio counts twice: sidecar and ambient
    assert {"Linkerd", "Kuma", "Traefik Mesh", "Open Service Mesh"} <= set(names)


@pytest.mark.parametrize(("name", "facts"), STATUS_FACTS.items())
def test_status_in_2026_states_the_fact_and_its_date(name, facts):
    mesh = next(mesh for mesh in MESHES if mesh.name == name)
    for fact in facts:
        assert fact in mesh.status_2026
    assert "2026" in mesh.status_source


def test_every_milestone_is_dated_in_order_and_sourced():
    for mesh in MESHES:
        dates = [milestone.when for milestone in mesh.milestones]
        assert dates == sorted(dates), mesh.name
        for milestone in mesh.milestones:
            assert re.fullmatch(r"20\d\d-(0[1-9]|1[0-2])", milestone.when), milestone
            assert milestone.source and milestone.short


def test_eras_run_in_order_and_every_proxy_has_a_source():
    assert [era.name for era in ERAS] == ["configuration files", "configuration languages", "scripting", "cluster era", "cloud-native era"]
    for era in ERAS:
        assert all(proxy.source and 1990 < proxy.year < 2030 for proxy in era.proxies)
    firsts = [min(proxy.year for proxy in era.proxies) for era in ERAS]
    assert firsts == sorted(firsts)


def test_table_rows_have_the_same_columns():
    rows = mesh_table()
    assert len(rows) == len(MESHES)
    assert all(list(row) == list(rows[0]) for row in rows)
    assert "status (2026)" in rows[0]


def test_related_projects_say_what_they_are_not():
    assert {project.name.split(" ")[0] for project in RELATED_PROJECTS} == {"SMI", "Service", "Network"}
    assert all(project.is_not and project.source for project in RELATED_PROJECTS)
