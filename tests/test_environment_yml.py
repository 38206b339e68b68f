"""environment.yml (conda, for readers) must list exactly pyproject's runtime dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
#: PyPI name -> conda-forge name, where they differ.
CONDA_NAMES: dict[str, str] = {"graphviz": "python-graphviz"}
#: Programs conda installs beside the Python packages (on Debian they come from apt): conda-forge's
#: "graphviz" is the dot program that lays out the diagrams.
CONDA_PROGRAMS = {"graphviz"}
IS_PYTHON = re.compile(r"python(?![-\w])")


def conda_spec(text: str) -> tuple[str, SpecifierSet]:
    """Parse a conda match spec such as ``numpy>=1.26`` or ``simpy=4.1`` (conda's ``=4.1`` means ``==4.1.*``)."""
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", text.strip())
    assert match, f"cannot parse conda spec {text!r}"
    name, spec = match.groups()
    if re.fullmatch(r"=[^=].*", spec):
        spec = f"=={spec[1:]}.*"
    return name.lower(), SpecifierSet(spec)


def load() -> tuple[dict, dict]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    return pyproject, environment


def test_runtime_dependencies_agree():
    pyproject, environment = load()
    wanted = {}
    for text in pyproject["dependencies"]:
        requirement = Requirement(text)
        wanted[CONDA_NAMES.get(requirement.name, requirement.name).lower()] = requirement.specifier
    listed = dict(conda_spec(item) for item in environment["dependencies"]
                  if isinstance(item, str) and not IS_PYTHON.match(item) and item != "pip")
    for program in CONDA_PROGRAMS:
        assert listed.pop(program, None) is not None, f"environment.yml lacks the program {program}"
    for section in (item["pip"] for item in environment["dependencies"] if isinstance(item, dict)):
        for requirement in (Requirement(text) for text in section if not text.startswith("-")):
            listed[requirement.name.lower()] = requirement.specifier
    assert listed == wanted, "environment.yml and pyproject.toml list different runtime dependencies"


def test_python_requirement_agrees():
    pyproject, environment = load()
    python = [conda_spec(item) for item in environment["dependencies"] if isinstance(item, str) and IS_PYTHON.match(item)]
    assert python == [("python", SpecifierSet(pyproject["requires-python"]))]


def test_conda_route_installs_meshlab_itself():
    _, environment = load()
    pip_sections = [item["pip"] for item in environment["dependencies"] if isinstance(item, dict)]
    assert [section[-1] for section in pip_sections] == ["-e ."]
    assert environment["channels"] == ["conda-forge"]


def test_conda_equals_means_a_version_prefix():
    assert conda_spec("simpy=4.1") == ("simpy", SpecifierSet("==4.1.*"))
    assert "4.1.2" in conda_spec("simpy=4.1")[1]
