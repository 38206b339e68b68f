"""The kind stage's plan as a chapter shows it (``stage.plan_script``): within the page's 100 columns,
and still exactly the commands the stage runs: bash reads the script back, with the four tools
replaced by functions that print their arguments, into the argv of every step of ``stage.plan``."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from meshlab.kind import stage
from meshlab.kind.runner import TOOLS, KindError
from meshlab.viz.text import WIDTH

#: Each tool becomes a shell function that prints its name and arguments, NUL-separated, one record each.
STUBS = "".join(f"{tool}() {{ for arg in {tool} \"$@\"; do printf '%s\\0' \"$arg\"; done; printf '\\1'; }}\n" for tool in TOOLS)


def _read_back(script: str) -> list[list[str]]:
    done = subprocess.run(["bash", "-c", STUBS + script], capture_output=True, timeout=30, check=True, stdin=subprocess.DEVNULL)
    return [record.split("\0")[:-1] for record in done.stdout.decode().split("\1")[:-1]]


@pytest.mark.parametrize("chapter", sorted(stage.CHAPTERS))
def test_the_plan_script_fits_the_page_and_bash_reads_back_the_plans_commands(chapter):
    script = stage.plan_script(chapter)
    assert max(len(line) for line in script.splitlines()) <= WIDTH
    steps = [line[2:] for line in script.splitlines() if line.startswith("# ")]
    commands = _read_back(script)
    assert len(steps) == len(commands) == len(stage.plan(chapter))
    assert [f"{step:<22} {shlex.join(argv)}" for step, argv in zip(steps, commands)] == stage.plan(chapter)


def test_chapter_02s_inline_script_is_cut_over_lines_and_still_one_argument():
    script = stage.plan_script("02")
    debug = next(argv for argv in _read_back(script) if "debug" in argv)
    assert debug[debug.index("-c") + 1].startswith("for save in iptables-save") and debug[-1] == "sh"
    assert sum(line.endswith("'\\") for line in script.splitlines()) >= 4, "the script spans lines inside its quotes"


def test_a_chapter_without_a_kind_section_is_refused_by_name():
    with pytest.raises(KindError, match="chapters with one: 02, 04, 06"):
        stage.plan_script("99")
