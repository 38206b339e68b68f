"""A workshop for real: ``meshlab classroom up`` as root makes real accounts and a real JupyterHub; two
students log in at once through the hub in Chromium, each runs chapter 02 with its live section (a
rootless lab as that student); neither can read the other's home or stop the other's lab; the
instructor's admin page lists both; ``down`` archives the homes and removes everything it made.
Then the bad inputs: each refused with its fix and nothing made."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import nbformat
import pytest

import chromium
from ports import free_port
from meshlab.classroom import accounts, hub

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "output"
CHAPTER = "02-transparent-interception.ipynb"

pytestmark = [pytest.mark.live, pytest.mark.browser,
              pytest.mark.skipif(os.geteuid() != 0, reason="a classroom makes system accounts: root only")]


def _as(name: str, *argv: str) -> subprocess.CompletedProcess:
    """A command run as a classroom account, with the PATH its server has."""
    path = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    return subprocess.run(["runuser", "-u", name, "--", "env", f"PATH={path}", f"HOME={pwd.getpwnam(name).pw_dir}", *argv],
                          capture_output=True, text=True, timeout=120, cwd="/")


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    assert not hub.STATE_DIR.exists(), f"a classroom is already up on this machine ({hub.STATE_DIR})"
    room, passwords = hub.up(2, free_port(), "127.0.0.1", ROOT)
    archive = tmp_path_factory.mktemp("archive") / "class.tar.gz"
    try:
        yield room, passwords, archive
    finally:
        if hub.STATE_DIR.exists():
            hub.down(archive)


def _log_in(browser, room, name: str, password: str):
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{room.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("input[type=submit], button[type=submit]")
    return page


def _run_chapter(page, room, name: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{room.url}/user/{name}/lab/tree/book/{CHAPTER}?reset")
    expect(page.locator(".jp-StatusBar-TextItem", has_text="Idle").first).to_be_visible(timeout=120_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def _wait_done_and_save(page, name: str) -> str:
    """Save until the student's file has every code cell run (JupyterLab renders only the cells in view,
    and the kernel is idle for a moment between cells, so neither the page nor the status bar says when
    Run All is over); return its outputs' text."""
    saved = Path(pwd.getpwnam(name).pw_dir) / "book" / CHAPTER
    deadline = time.monotonic() + 300
    while True:
        page.keyboard.press("Control+s")
        time.sleep(2)
        notebook = nbformat.read(saved, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        if all(cell.execution_count for cell in code) or time.monotonic() > deadline:
            break
    assert all(cell.execution_count for cell in code), f"{name}: not every cell ran within 300 s"
    return "\n".join(str(output.get("text", "")) + str(output.get("ename", "")) + str(output.get("evalue", ""))
                     for cell in code for output in cell.outputs)


def test_two_students_run_the_live_chapter_at_once_and_stay_apart(classroom):
    from playwright.sync_api import expect, sync_playwright

    room, passwords, archive = classroom
    first, second = room.students
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = chromium.launch(playwright)
        try:
            pages = {name: _log_in(browser, room, name, passwords[name]) for name in (first, second)}
            for name, page in pages.items():  # the hub spawned their servers and sent them to the book
                page.wait_for_url(re.compile(rf"/user/{name}/lab"), timeout=120_000)
            wrong = _log_in(browser, room, first, passwords[second])  # another's password opens nothing
            expect(wrong.locator("text=Invalid username or password")).to_be_visible(timeout=30_000)
            for name, page in pages.items():
                _run_chapter(page, room, name)
            texts = {name: _wait_done_and_save(page, name) for name, page in pages.items()}
            for name, text in texts.items():
                assert "live stage: available" in text and "lab ml02 is down" in text, f"{name}'s live section did not run"
                assert "Error" not in text and "Traceback" not in text, f"{name}'s chapter failed: {text[-2000:]}"
                pages[name].screenshot(path=str(OUTPUT / f"classroom-{name}-chapter-02.png"))
            student = pages[first]  # nbgrader's instructor tools are not a student's
            expect(student.locator("text=Create Assignment")).to_have_count(0)
            assert student.goto(f"{room.url}/user/{first}/formgrader").status == 404
            admin = _log_in(browser, room, room.instructor, passwords[room.instructor])
            admin.wait_for_url(re.compile(rf"/user/{room.instructor}/lab"), timeout=120_000)
            expect(admin.locator("text=Create Assignment").first).to_be_visible(timeout=60_000)
            admin.goto(f"{room.url}/hub/admin")
            for name in (first, second):
                expect(admin.locator(f"text={name}").first).to_be_visible(timeout=30_000)
            admin.screenshot(path=str(OUTPUT / "classroom-admin.png"))
        finally:
            browser.close()

    report = hub.status()
    running = {account["name"]: account for account in report["accounts"]}
    assert running[first]["server"] == running[second]["server"] == "running"
    assert running[first]["rss_mb"] > 50, "a running JupyterLab and kernel use memory"
    assert "(idle-culler@" in (hub.STATE_DIR / "hub.log").read_text(), "the idle culler asks the hub about activity"
    for private in ("passwords.json", "token", "jupyterhub.sqlite", "jupyterhub_config.py", "hub.log"):
        assert (hub.STATE_DIR / private).stat().st_mode & 0o077 == 0, f"{private} is readable by others"

    # homes: private
    other_home = pwd.getpwnam(second).pw_dir
    peek = _as(first, "ls", other_home)
    assert peek.returncode != 0 and "Permission denied" in peek.stderr
    # labs: a student's lab is out of another's reach
    started = _as(second, "meshlab", "lab", "up", "--prefix", "mlcl2", "--pods", "2")
    assert started.returncode == 0, started.stderr
    try:
        stopped = _as(first, "meshlab", "lab", "down", "--prefix", "mlcl2")
        still = _as(second, "meshlab", "lab", "status", "--prefix", "mlcl2")
        assert still.returncode == 0 and "pod0" in still.stdout, f"{first} stopped {second}'s lab: {stopped.stdout}{stopped.stderr}"
        theirs = accounts.processes_of(pwd.getpwnam(second).pw_uid)
        killed = _as(first, "kill", "-TERM", *map(str, theirs))
        assert killed.returncode != 0 and all(Path(f"/proc/{pid}").exists() for pid in theirs)
        assert _as(first, "ls", f"/tmp/meshlab-{pwd.getpwnam(second).pw_uid}").returncode != 0
    finally:
        _as(second, "meshlab", "lab", "down", "--prefix", "mlcl2")

    # nbgrader: a student hands a lab in from their home; the instructor collects it, and only the instructor
    lab = "04-choosing-a-model"
    handed_in = _as(first, "bash", "-c", f"cd ~/labs && nbgrader submit {lab}")
    assert handed_in.returncode == 0, handed_in.stderr
    course_dir = hub.STATE_DIR / "course"
    assert _as(second, "ls", str(course_dir)).returncode != 0, "a student reads the course (solutions, gradebook)"
    collected = _as(room.instructor, "bash", "-c", f"cd {course_dir} && nbgrader collect {lab}")
    assert collected.returncode == 0, collected.stderr
    assert (course_dir / "submitted" / first / lab / f"{lab}.ipynb").exists()

    uids = [pwd.getpwnam(name).pw_uid for name in room.accounts_made]
    homes = [pwd.getpwnam(name).pw_dir for name in room.accounts_made]
    hub.down(archive)
    with tarfile.open(archive) as saved:
        names = saved.getnames()
    assert f"{first}/book/{CHAPTER}" in names and f"{second}/labs" in names
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    assert not any(accounts.exists(name) for name in room.accounts_made)
    assert not any(Path(home).exists() for home in homes)
    left = {uid: [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in accounts.processes_of(uid)] for uid in uids}
    assert not any(left.values()), left
    assert not any(Path(f"/tmp/meshlab-{uid}").exists() for uid in uids)
    assert not hub.STATE_DIR.exists()


def _nothing_made() -> None:
    assert not hub.STATE_DIR.exists()
    assert not any(accounts.exists(name) for name in [*accounts.student_names(3), accounts.INSTRUCTOR])


@pytest.mark.parametrize("students", [0, 100])
def test_a_bad_student_count_is_refused(students):
    with pytest.raises(hub.ClassroomError, match="1 to 99 students"):
        hub.up(students, free_port(), "127.0.0.1", ROOT)
    _nothing_made()


def test_a_busy_port_is_refused_with_the_fix():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(hub.ClassroomError, match="choose another with --port"):
            hub.up(3, busy.getsockname()[1], "127.0.0.1", ROOT)
    _nothing_made()


def test_missing_node_is_reported_with_the_fix(monkeypatch):
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda program: None if program in ("node", "npm") else which(program))
    with pytest.raises(hub.ClassroomError, match="apt-get install nodejs npm"):
        hub.up(3, free_port(), "127.0.0.1", ROOT)
    _nothing_made()


def test_an_existing_account_is_never_taken_over():
    accounts.create(f"{accounts.STUDENT_PREFIX}02")
    try:
        with pytest.raises(hub.ClassroomError, match="mlstudent02 already exist"):
            hub.up(3, free_port(), "127.0.0.1", ROOT)
        assert not hub.STATE_DIR.exists()
    finally:
        accounts.remove(f"{accounts.STUDENT_PREFIX}02")


def test_a_classroom_needs_root():
    done = subprocess.run([sys.executable, "-m", "meshlab.cli", "classroom", "up", "--students", "2"], user=65534, group=65534,
                          extra_groups=[], capture_output=True, text=True, cwd="/", env={"PATH": "/usr/bin:/bin", "HOME": "/"})
    assert done.returncode == 2 and "run it as root" in done.stderr, done.stderr


def test_a_state_folder_left_by_a_crash_is_named_with_the_fix():
    hub.STATE_DIR.mkdir(parents=True)
    try:
        with pytest.raises(hub.ClassroomError, match="never started .* remove it"):
            hub.up(3, free_port(), "127.0.0.1", ROOT)
        assert not any(accounts.exists(name) for name in [*accounts.student_names(3), accounts.INSTRUCTOR])
    finally:
        hub.STATE_DIR.rmdir()
        with contextlib.suppress(OSError):  # /var/lib/meshlab, if the test made it
            hub.STATE_DIR.parent.rmdir()
