"""The labs graded by nbgrader itself: its generate_assignment makes the student copies, and a round trip
through its exchange (release, fetch, submit, collect, autograde, feedback) scores scripted students.

nbgrader reads the cells' metadata, clears the solutions, and runs each submission's graded cells; the
scores come from its gradebook and the hints from the feedback it writes. Lab 04 runs on the model stage;
lab 02's second check starts a live lab, so that round trip is a live test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from meshlab.course import CourseError, make_course, nbgrader, scores, student_config
from meshlab.labs import BEGIN_SOLUTION, END_SOLUTION, student_copy

ROOT = Path(__file__).resolve().parents[1]
LABS = sorted((ROOT / "labs").glob("[0-9][0-9]-*.ipynb"))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    directory = tmp_path_factory.mktemp("course")
    return directory, make_course(ROOT / "labs", directory)


def _cells(path: Path) -> dict[str, nbformat.NotebookNode]:
    return {cell.metadata["nbgrader"]["grade_id"]: cell for cell in nbformat.read(path, as_version=4).cells if "nbgrader" in cell.metadata}


def test_every_lab_has_solution_cells_and_graded_cells_that_nbgrader_accepts(course):
    directory, names = course
    assert names == [lab.stem for lab in LABS]
    for lab in LABS:
        cells = _cells(lab)
        solutions = [cell for cell in cells.values() if cell.metadata["nbgrader"]["solution"]]
        graded = [cell for cell in cells.values() if cell.metadata["nbgrader"]["grade"]]
        assert solutions and graded, lab.name
        assert all(BEGIN_SOLUTION in cell.source for cell in solutions), lab.name
        assert all(re.search(r"\blab\d\d\.check_\w+\(", cell.source) and cell.metadata["nbgrader"]["locked"] for cell in graded), lab.name
        assert (directory / "release" / lab.stem / lab.name).exists()


def test_nbgrader_and_meshlab_make_the_same_student_copy(course):
    """meshlab labs release (meshlab.labs.student_copy) clears solutions exactly as nbgrader's ClearSolutions does."""
    directory, _ = course
    for lab in LABS:
        ours = student_copy(json.loads(lab.read_text()), lab.name)["cells"]
        theirs = nbformat.read(directory / "release" / lab.stem / lab.name, as_version=4).cells
        assert ["".join(cell["source"]).strip() for cell in ours] == [cell.source.strip() for cell in theirs], lab.name


def test_a_course_folder_is_not_overwritten(course):
    directory, _ = course
    with pytest.raises(CourseError, match="is not empty"):
        make_course(ROOT / "labs", directory)


def test_a_lab_nbgrader_refuses_leaves_no_course_behind(tmp_path):
    """nbgrader's own validation refuses a graded cell without points; nothing of the course is left."""
    labs = tmp_path / "labs"
    labs.mkdir()
    lab = nbformat.read(LABS[0], as_version=4)
    next(cell for cell in lab.cells if cell.metadata.get("nbgrader", {}).get("grade")).metadata["nbgrader"].pop("points")
    nbformat.write(lab, labs / LABS[0].name)
    with pytest.raises(CourseError, match="generate_assignment"):
        make_course(labs, tmp_path / "course")
    assert not (tmp_path / "course").exists()


def _answer(lab: Path, grade_id: str) -> str:
    """The solution cell's code without its markers: what a student who got it right wrote."""
    return "\n".join(line for line in _cells(lab)[grade_id].source.splitlines() if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION))


def _round_trip(directory: Path, lab: Path, students: dict[str, dict[str, str]], tmp_path: Path) -> dict:
    """Release ``lab``; each student fetches it, replaces the given solution cells' code and submits;
    then collect, autograde and feedback. Returns (scores, each student's feedback HTML)."""
    name = lab.stem
    nbgrader(directory, "release_assignment", name, "--force")
    for student, answers in students.items():
        home = tmp_path / student
        home.mkdir()
        (home / "nbgrader_config.py").write_text(student_config(directory))
        nbgrader(home, "fetch_assignment", name)
        copy = home / name / lab.name
        notebook = nbformat.read(copy, as_version=4)
        for cell in notebook.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") in answers:
                cell.source = answers[cell.metadata["nbgrader"]["grade_id"]]
        nbformat.write(notebook, copy)
        nbgrader(home, "submit", name, f"--student={student}")  # as root; a classroom's students submit as themselves
    nbgrader(directory, "collect", name)
    nbgrader(directory, "autograde", name, "--force")
    nbgrader(directory, "generate_feedback", name, "--force")
    feedback = {student: (directory / "feedback" / student / name / f"{lab.stem}.html").read_text() for student in students}
    return scores(directory, name), feedback


def test_autograde_scores_a_model_lab_and_its_feedback_shows_the_hints(course, tmp_path):
    directory, _ = course
    lab = ROOT / "labs" / "04-choosing-a-model.ipynb"
    right = {"choose": _answer(lab, "choose"), "choose_open": _answer(lab, "choose_open")}
    sidecars = 'def choose_open():\n    return {"model": "sidecar", "waypoints": [], "memory_mb": 0, "blast_radius_max_pods": 1}'
    got, feedback = _round_trip(directory, lab, {
        "alice": right,
        "bob": {"choose": right["choose"], "choose_open": sidecars},
        "carol": {},  # hands in the stubs
    }, tmp_path)
    assert got == {"alice": {"check_choice": (1.0, 1.0), "check_open_choice": (1.0, 1.0)},
                   "bob": {"check_choice": (1.0, 1.0), "check_open_choice": (0.0, 1.0)},
                   "carol": {"check_choice": (0.0, 1.0), "check_open_choice": (0.0, 1.0)}}
    assert "MB of proxies; the budget is 250 MB" in feedback["bob"]
    assert "choose is not answered yet" in feedback["carol"]
    assert "CheckFailed" not in feedback["alice"]


@pytest.mark.live
def test_autograde_runs_a_live_check_in_a_real_lab(course, tmp_path):
    directory, _ = course
    lab = ROOT / "labs" / "02-excluding-a-port.ipynb"
    right = {"capture_config": _answer(lab, "capture_config"), "bypassed": _answer(lab, "bypassed")}
    got, feedback = _round_trip(directory, lab, {
        "dora": right,
        "eli": {"capture_config": right["capture_config"], "bypassed": "def bypassed(reply):\n    return True"},
    }, tmp_path)
    assert got == {"dora": {"check_rules": (1.0, 1.0), "check_live": (1.0, 1.0)},
                   "eli": {"check_rules": (1.0, 1.0), "check_live": (0.0, 1.0)}}
    assert "the sidecar connects to the app from 127.0.0.6" in feedback["eli"]


def test_a_live_check_where_the_live_stage_is_missing_is_not_graded_and_says_why(monkeypatch):
    """What autograde's feedback shows for a live check on a machine without the live stage: no lab is
    started, the cell scores 0, and the message gives doctor's reason and fix."""
    from meshlab import doctor
    from meshlab.check import StageMissing, lab02

    missing = doctor.StageReport(False, "network namespaces need root or user namespaces", "run as root")
    monkeypatch.setattr(doctor, "diagnose", lambda stages=doctor.STAGES: {stage: missing for stage in stages})
    with pytest.raises(StageMissing, match=r"not graded on this machine: this check runs on the live stage.*fix: run as root"):
        lab02.check_live(lambda: None, lambda reply: True)
