"""The labs as an nbgrader course: nbgrader's own commands release them, collect the work and grade it.

Each lab in ``labs/`` carries nbgrader's cell metadata (schema 3): the cells with
``### BEGIN SOLUTION`` are solution cells, the cells that call a check are locked, autograded cells
worth a point per check. A course directory holds them as nbgrader expects (``source/<lab>/<lab>.ipynb``,
one assignment per lab, named by the lab's file stem), with an exchange folder of its own, so an
instructor runs nbgrader's workflow unchanged: ``generate_assignment``, ``release_assignment``; the
students ``fetch_assignment`` and ``submit``; then ``collect``, ``autograde``, ``generate_feedback``.
A check that fails raises CheckFailed, so the cell scores 0 and the feedback shows the check's hint.

    CourseError    a course that cannot be made or a command of nbgrader's that failed, with its reason
    make_course    a course directory from the labs, every assignment generated (the student copies)
    release_all    nbgrader's release_assignment for every assignment (into the exchange)
    student_config what a student's nbgrader needs to find the course's exchange (their nbgrader_config.py)
    nbgrader       run one nbgrader command in a course directory or a student's folder
    scores         the autograded score of each graded cell, per student, read from nbgrader's gradebook
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

COURSE_ID = "meshlab"
#: nbgrader's configuration file in a course directory; the exchange is inside the course, mode 1777 as
#: nbgrader's exchange must be (classroom.md: the default /usr/local/share/nbgrader/exchange is not writable).
CONFIG = """c = get_config()
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = {root!r}
c.Exchange.root = {exchange!r}
"""
STUDENT_CONFIG = """c = get_config()
c.CourseDirectory.course_id = {course_id!r}
c.Exchange.root = {exchange!r}
"""


class CourseError(RuntimeError):
    """An nbgrader course that cannot be made, or an nbgrader command that failed (its last lines say why)."""


def make_course(labs_dir: Path, course_dir: Path, course_id: str = COURSE_ID, exchange: Path | None = None) -> list[str]:
    """Write ``course_dir`` (config, ``source/``) from the labs in ``labs_dir`` and generate every
    assignment with nbgrader (``release/<lab>/``); returns the assignment names, one per lab. The
    exchange is ``course_dir/exchange`` unless given (a classroom keeps it outside the instructor's
    private course folder)."""
    labs = sorted(Path(labs_dir).glob("[0-9][0-9]-*.ipynb"))
    if not labs:
        raise CourseError(f"no lab notebooks (NN-name.ipynb) in {labs_dir}")
    course_dir = Path(course_dir).resolve()
    if course_dir.exists() and any(course_dir.iterdir()):
        raise CourseError(f"{course_dir} is not empty; a course is made in an empty or new folder")
    exchange = Path(exchange).resolve() if exchange is not None else course_dir / "exchange"
    made = [path for path in (course_dir, exchange) if not path.exists()]
    try:
        course_dir.mkdir(parents=True, exist_ok=True)
        exchange.mkdir(parents=True, exist_ok=True)
        exchange.chmod(0o1777)  # students write their submissions here
        (course_dir / "nbgrader_config.py").write_text(CONFIG.format(course_id=course_id, root=str(course_dir), exchange=str(exchange)))
        for lab in labs:
            (course_dir / "source" / lab.stem).mkdir(parents=True)
            shutil.copy2(lab, course_dir / "source" / lab.stem / lab.name)
            nbgrader(course_dir, "generate_assignment", lab.stem)
    except BaseException:  # nothing half made: what this call created goes (the course folder was empty)
        for path in made:
            shutil.rmtree(path, ignore_errors=True)
        if course_dir not in made:
            for child in list(course_dir.iterdir()):
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        raise
    return [lab.stem for lab in labs]


def student_config(course_dir: Path) -> str:
    """The nbgrader_config.py a student's folder (or home) needs: the course and where its exchange is."""
    return STUDENT_CONFIG.format(course_id=_setting(course_dir, "course_id"), exchange=_setting(course_dir, "Exchange.root"))


def release_all(course_dir: Path) -> list[str]:
    """``nbgrader release_assignment`` for every generated assignment: students can fetch and submit them."""
    names = sorted(path.name for path in (Path(course_dir) / "release").iterdir() if path.is_dir())
    for name in names:
        nbgrader(course_dir, "release_assignment", name, "--force")
    return names


def nbgrader(directory: Path, command: str, *args: str, timeout: float = 900) -> str:
    """Run ``nbgrader command args`` in ``directory`` (a course, or a student's folder for fetch and
    submit: nbgrader records the submitting user's login name, or the ``--student`` given). nbgrader
    runs Alembic by name, so the venv's bin folder goes first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    done = subprocess.run([str(Path(bin_dir, "nbgrader")), command, *args], cwd=directory, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or "| ERROR]" in done.stderr:
        said = [line for line in done.stderr.splitlines() if line.strip()]
        raise CourseError(f"nbgrader {command} {' '.join(args)} failed in {directory}:\n" + "\n".join(said[-8:]))
    return done.stdout + done.stderr


def scores(course_dir: Path, assignment: str) -> dict[str, dict[str, tuple[float, float]]]:
    """(score, points) of each autograded cell, by student and grade id, from the course's gradebook."""
    from nbgrader.api import Gradebook

    found: dict[str, dict[str, tuple[float, float]]] = {}
    with Gradebook(f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}", course_id=_setting(course_dir, "course_id")) as gradebook:
        for submission in gradebook.assignment_submissions(assignment):
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    found.setdefault(submission.student.id, {})[grade.name] = (grade.score, grade.max_score)
    return found


def _setting(course_dir: Path, name: str) -> str:
    """A value make_course wrote into the course's nbgrader_config.py (``course_id``, ``Exchange.root``)."""
    config = (Path(course_dir) / "nbgrader_config.py").read_text()
    return next(line.split("=", 1)[1].strip().strip("'\"") for line in config.splitlines() if line.startswith("c.") and name in line)
