"""The room's pre-flight: real ``meshlab doctor --json`` output from this machine, and edited copies of
it for the machines a room also has (a macOS laptop, a Linux laptop without root), summarised."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from meshlab.classroom.preflight import LIVE_STAGES, PreflightError, book_parts, read_reports, render, summarise, to_json
from meshlab.doctor import STAGES

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def doctor_json() -> dict:
    """What ``meshlab doctor --json`` prints on this machine, run as a student would run it."""
    done = subprocess.run([str(Path(sys.executable).parent / "meshlab"), "doctor", "--json"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def parts():
    return book_parts(ROOT)


def without(report: dict, *stages: str, reason: str = "the live lab needs a Linux kernel; this is Darwin",
            fix: str = "use a Linux machine or VM; the model stage works here") -> dict:
    """``report`` with ``stages`` unavailable for ``reason``."""
    edited = copy.deepcopy(report)
    for stage in stages:
        edited["stages"][stage] = {"available": False, "reason": reason, "fix": fix}
    return edited


def test_this_machines_report_is_summarised_as_doctor_said(doctor_json, parts):
    room = summarise({"this machine": doctor_json}, parts)
    assert [count.stage for count in room.stages] == list(STAGES)
    for count in room.stages:
        entry = doctor_json["stages"][count.stage]
        assert (count.ready == ("this machine",)) is entry["available"]
        assert count.cannot == (() if entry["available"] else ((entry["reason"], entry["fix"], ("this machine",)),))
    assert all(len(line) <= 100 for line in render(room).splitlines())


def test_machines_without_the_live_stage_run_exactly_the_live_parts_on_the_model(doctor_json, parts):
    mac = without(doctor_json, *(stage for stage in STAGES if stage != "model"))
    room = summarise({"linux": without(doctor_json, "kind"), "mac": mac}, parts)
    for part in room.parts:
        uses_live = bool(set(part.stages) & set(LIVE_STAGES))
        assert ("mac" in room.model_only(part)) is uses_live, part
    if doctor_json["stages"]["live"]["available"]:
        assert all("linux" not in room.model_only(part) for part in room.parts if "ebpf" not in part.stages)
    assert "lab 03      Counting the path" in render(room)


def test_the_same_reason_on_several_machines_is_one_group_with_its_fix(doctor_json, parts):
    no_root = without(doctor_json, "live", "ebpf", reason="creating a network namespace needs root", fix="run as root, or rootless")
    room = summarise({"alice": no_root, "bob": copy.deepcopy(no_root), "carol": doctor_json}, parts)
    live = next(count for count in room.stages if count.stage == "live")
    assert ("creating a network namespace needs root", "run as root, or rootless", ("alice", "bob")) in live.cannot
    text = render(room)
    assert "    alice, bob: creating a network namespace needs root\n      fix: run as root, or rootless" in text


def test_a_report_made_with_stage_leaves_the_others_not_checked(doctor_json, parts):
    only_model = {"stages": {"model": doctor_json["stages"]["model"]}}
    room = summarise({"dave": only_model}, parts)
    kind = next(count for count in room.stages if count.stage == "kind")
    assert kind.ready == () and "not checked" in kind.cannot[0][0]


def test_json_says_what_the_text_says(doctor_json, parts):
    room = summarise({"mac": without(doctor_json, "live", "ebpf")}, parts)
    data = json.loads(to_json(room))
    assert data["machines"] == ["mac"] and set(data["stages"]) == set(STAGES)
    lab03 = next(item for item in data["parts"] if item["part"] == "lab 03")
    assert lab03["uses"] == ["live", "ebpf"] and lab03["model_only"] == {"mac": ["live", "ebpf"]}


def test_what_a_chapter_uses_is_what_its_text_says(parts):
    """The stages read from a chapter's imports must be among those its text names in bold ("runs on
    the **upstream** stage"), written by the chapter's author, not derived here."""
    for part in parts:
        if not part.name.startswith("chapter"):
            continue
        source = next((ROOT / "notebooks").glob(f"{part.name[-2:]}-*.py")).read_text()
        said = set(re.findall(r"\*\*(model|live|upstream|kind)\b", source))
        assert set(part.stages) - {"ebpf"} <= said, (part, said)
    chapter_03 = next(part for part in parts if part.name == "chapter 03")
    assert chapter_03.stages == ("live", "ebpf")


def test_loopback_only_parts_need_no_live_stage(parts):
    by_name = {part.name: part for part in parts}
    # lab 11's live section runs on loopback (the MetaProtocol proxy): no root, no namespaces; chapter 05's does too,
    # but its last section runs istiod itself (upstream) serving a live lab's pods
    assert by_name["chapter 05"].stages == ("live", "upstream") and by_name["lab 11"].stages == ()
    assert by_name["lab 02"].stages == ("live",), "lab 02's check_live starts a live lab (meshlab.check.lab02)"


@pytest.mark.parametrize(("report", "said"), [
    ({"model": {"available": True}}, 'not meshlab doctor --json output: {"stages": {stage: {"available"'),
    ({"stages": {}}, "not meshlab doctor --json output"),
    ({"stages": {"docker": {"available": True, "reason": "", "fix": ""}}}, "unknown stage 'docker'; doctor's stages are model, live"),
    ({"stages": {"live": {"available": "yes", "reason": "", "fix": ""}}}, "stage 'live' is not {\"available\": true|false"),
    ([1, 2], "not meshlab doctor --json output"),
])
def test_a_report_that_is_not_doctors_output_is_named(report, said, parts):
    with pytest.raises(PreflightError, match=re.escape(f"erin: {said}")):
        summarise({"erin": report}, parts)


def test_files_are_read_by_name_and_a_bad_one_is_named(tmp_path, doctor_json):
    (tmp_path / "alice.json").write_text(json.dumps(doctor_json))
    (tmp_path / "bob.json").write_text("Traceback (most recent call last):\n")
    (tmp_path / "carol.json").write_text(json.dumps({"kind": "not doctor"}))
    assert list(read_reports([tmp_path / "alice.json"])) == ["alice"]
    with pytest.raises(PreflightError, match=re.escape(f"{tmp_path / 'bob.json'}: not JSON (line 1): expected `meshlab doctor --json` output")):
        read_reports([tmp_path / "alice.json", tmp_path / "bob.json"])
    with pytest.raises(PreflightError, match=re.escape(f"{tmp_path / 'carol.json'}: not meshlab doctor --json output")):
        read_reports([tmp_path / "carol.json"])
    with pytest.raises(PreflightError, match="cannot read it"):
        read_reports([tmp_path / "dave.json"])


def test_no_reports_at_all_is_an_error():
    with pytest.raises(PreflightError, match="no reports: give the files students made"):
        read_reports([])
    with pytest.raises(PreflightError, match="no reports: give at least one"):
        summarise({}, ())


def test_a_folder_without_the_book_is_named(tmp_path):
    with pytest.raises(PreflightError, match=f"no chapters \\(notebooks/NN-\\*.py\\) under {re.escape(str(tmp_path))}"):
        book_parts(tmp_path)
