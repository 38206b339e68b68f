"""Bad arguments to meshlab get exit code 2 and a message naming what was wrong and what is accepted."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def meshlab(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meshlab.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=60)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("dance",), "invalid choice: 'dance'"),
        (("labs",), "the following arguments are required: COMMAND"),
        (("labs", "release"), "the following arguments are required: --out"),
        (("book", "--port", "http"), "argument --port: invalid int value: 'http'"),
        (("book", "--port", "99999"), "PORT=99999 is not a TCP port; use 1-65535"),
        (("doctor", "--frobnicate"), "unrecognized arguments: --frobnicate"),
        (("lab", "up", "--debounce-after", "5x"), "argument --debounce-after: '5x' is not a Go duration such as 5s, 100ms or 1m30s"),
        (("lab", "up", "--prefix", "mlcli", "--debounce-max", "2s"), "--debounce-after and --debounce-max are istiod's PILOT_DEBOUNCE_AFTER"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message):
    done = meshlab(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_release_from_a_missing_folder(tmp_path):
    done = meshlab("labs", "release", "--source", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and f"no labs folder at {tmp_path / 'nope'}" in done.stderr


def test_book_on_a_busy_port_says_so_and_suggests_another():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = meshlab("book", "--ip", "127.0.0.1", "--port", str(port))
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is busy" in done.stderr and "PORT=" in done.stderr


def test_book_outside_the_repository(tmp_path):
    done = meshlab("book", "--port", "8999", cwd=tmp_path)
    assert done.returncode == 2 and "run make lab from the repository root" in done.stderr


def test_kind_plan_prints_a_chapters_commands_and_run_says_why_not(monkeypatch):
    from meshlab import cli, doctor

    plan = subprocess.run([sys.executable, "-m", "meshlab.cli", "kind", "plan", "06"], capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert lines[:2] == ["# find cluster", "kind get clusters"]
    assert any("--set values.pilot.env.PILOT_DEBOUNCE_AFTER=100ms" in line for line in lines)
    monkeypatch.setattr(doctor, "check_kind", lambda: doctor.StageReport(False, "docker is not installed", "install Docker"))
    assert cli.main(["kind", "run", "04"]) == 1
    bad = subprocess.run([sys.executable, "-m", "meshlab.cli", "kind", "plan", "07"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no kind section for chapter '07'" in bad.stderr and "chapters with one: 02, 04, 06" in bad.stderr
