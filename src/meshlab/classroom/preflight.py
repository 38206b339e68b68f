"""Before a workshop: what the room can run, from every student's ``meshlab doctor --json``.

Each student runs ``meshlab doctor --json`` on their machine the day before and hands in the file; the
summary says, per stage, how many machines run it and why the others cannot (reasons grouped, each with
doctor's fix), and which chapters and labs the whole room can run in full and where some machines fall
back to the model stage, which every chapter has.

What a chapter or lab uses is read from the book itself, not from a table kept beside it: meshlab's
stages are packages (the live lab ``meshlab.lab``, ``meshlab.upstream``, ``meshlab.kind``), so a chapter
uses the stages whose packages it imports, and the eBPF datapath where it asks ``doctor`` about
``ebpf``; a lab uses what it and its checks (``meshlab.check.labNN``) import.

    PreflightError  a report that is not doctor's output, an unknown stage, no reports, no book
    Part            a chapter or lab and the stages it uses beyond the model
    book_parts      every chapter and lab of a book folder, with the stages each uses
    StageCount      one stage across the room: who runs it, who cannot and why (grouped by reason)
    RoomReport      the room: machines, stages, parts; who runs each part only on the model stage
    read_reports    doctor reports from files, keyed by file name, each checked
    summarise       the room from reports keyed by machine (a file name or a student)
    render          the summary as text, within 100 columns
    to_json         the summary as JSON, for scripts
"""

from __future__ import annotations

import ast
import json
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshlab.doctor import STAGES
from meshlab.viz.architectures import CHAPTERS

WIDTH = 100
#: The stage packages, and the stage each one is (DESIGN.md: "one subpackage per stage").
STAGE_PACKAGES = {"meshlab.lab": "live", "meshlab.upstream": "upstream", "meshlab.kind": "kind"}
#: Without these a machine runs a part's live sections on the model stage; upstream and kind sections
#: are optional (chapter 00's "optional sections"), so they are counted, not a fallback.
LIVE_STAGES = ("live", "ebpf")
REPORT_KEYS = {"available": bool, "reason": str, "fix": str}


class PreflightError(ValueError):
    """Input that cannot be summarised: the message names the report (or file) and what is accepted."""


@dataclass(frozen=True)
class Part:
    """A chapter or a lab (``name`` "chapter 02" or "lab 02") and the stages it uses beyond the model."""

    name: str
    title: str
    stages: tuple[str, ...]


def _imports(source: str, where: str) -> tuple[set[str], set[str]]:
    """The modules ``source`` imports, and the stages it asks ``doctor`` about (``doctor.check_live()``,
    ``doctor.diagnose(("live", "ebpf"))``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise PreflightError(f"{where} is not Python (line {error.lineno}): the book's parts are jupytext percent-format sources") from None
    modules: set[str] = set()
    asked: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "doctor":
            if node.func.attr.startswith("check_"):
                asked.add(node.func.attr.removeprefix("check_"))
            elif node.func.attr == "diagnose" and node.args and isinstance(node.args[0], ast.Tuple):
                asked.update(item.value for item in node.args[0].elts if isinstance(item, ast.Constant) and isinstance(item.value, str))
    return modules, asked & set(STAGES)


def _stages(modules: Iterable[str], asked: Iterable[str]) -> tuple[str, ...]:
    used = {stage for module in modules for package, stage in STAGE_PACKAGES.items() if module == package or module.startswith(package + ".")}
    used |= set(asked)
    return tuple(stage for stage in STAGES if stage in used and stage != "model")


def _lab_title(source: str, path: Path) -> str:
    """A lab's title: its first heading, without the "Lab NN ·" before it."""
    for line in source.splitlines():
        if line.startswith("# # "):
            return line[4:].split("·", 1)[-1].strip()
    return path.stem[3:].replace("-", " ")


def book_parts(root: Path) -> tuple[Part, ...]:
    """Every chapter (``notebooks/NN-*.py``) and lab (``labs/NN-*.py``) under ``root``, in the book's order."""
    root = Path(root)
    chapters, labs = sorted((root / "notebooks").glob("[0-9][0-9]-*.py")), sorted((root / "labs").glob("[0-9][0-9]-*.py"))
    if not chapters:
        raise PreflightError(f"no chapters (notebooks/NN-*.py) under {root.resolve()}: run from the repository's root")
    titles = {number: title for number, title, _ in CHAPTERS}
    parts = []
    for path in chapters:
        modules, asked = _imports(path.read_text(), str(path))
        parts.append(Part(f"chapter {path.name[:2]}", titles.get(path.name[:2], path.stem[3:]), _stages(modules, asked)))
    for path in labs:
        source = path.read_text()
        modules, asked = _imports(source, str(path))
        check = Path(__file__).parents[1] / "check" / f"lab{path.name[:2]}.py"
        if check.exists():
            modules |= _imports(check.read_text(), str(check))[0]
        parts.append(Part(f"lab {path.name[:2]}", _lab_title(source, path), _stages(modules, asked)))
    return tuple(parts)


@dataclass(frozen=True)
class StageCount:
    """One stage across the room: the machines that run it, and the others grouped by (reason, fix)."""

    stage: str
    ready: tuple[str, ...]
    cannot: tuple[tuple[str, str, tuple[str, ...]], ...]  # (reason, fix, machines)


@dataclass(frozen=True)
class RoomReport:
    """What the room can run: ``stages`` in doctor's order, and the book's ``parts``."""

    machines: tuple[str, ...]
    stages: tuple[StageCount, ...]
    parts: tuple[Part, ...]

    def ready(self, stage: str) -> set[str]:
        return next(set(count.ready) for count in self.stages if count.stage == stage)

    def model_only(self, part: Part) -> dict[str, tuple[str, ...]]:
        """The machines that run ``part``'s live sections on the model stage, with the stages they lack."""
        lacking = {machine: tuple(s for s in part.stages if s in LIVE_STAGES and machine not in self.ready(s)) for machine in self.machines}
        return {machine: stages for machine, stages in lacking.items() if stages}


def _checked(name: str, report: object) -> dict[str, dict]:
    """The report's stages, or PreflightError naming ``name`` and what doctor's output looks like."""
    shape = 'meshlab doctor --json output: {"stages": {stage: {"available": true|false, "reason": "...", "fix": "..."}}}'
    if not isinstance(report, Mapping) or not isinstance(report.get("stages"), Mapping) or not report["stages"]:
        raise PreflightError(f"{name}: not {shape}")
    stages = report["stages"]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise PreflightError(f"{name}: unknown stage {unknown[0]!r}; doctor's stages are {', '.join(STAGES)}")
    for stage, entry in stages.items():
        if not isinstance(entry, Mapping) or any(not isinstance(entry.get(key), kind) for key, kind in REPORT_KEYS.items()):
            raise PreflightError(f"{name}: stage {stage!r} is not {{\"available\": true|false, \"reason\": \"...\", \"fix\": \"...\"}}")
    return dict(stages)


def read_reports(paths: Sequence[Path]) -> dict[str, dict]:
    """Reports from files (``meshlab doctor --json > NAME.json``), keyed by file name without .json."""
    if not paths:
        raise PreflightError("no reports: give the files students made with `meshlab doctor --json > NAME.json`")
    reports: dict[str, dict] = {}
    for path in map(Path, paths):
        try:
            report = json.loads(path.read_text())
        except OSError as error:
            raise PreflightError(f"{path}: cannot read it ({error.strerror})") from None
        except json.JSONDecodeError as error:
            raise PreflightError(f"{path}: not JSON (line {error.lineno}): expected `meshlab doctor --json` output") from None
        name = path.name.removesuffix(".json")
        if name in reports:
            raise PreflightError(f"{path}: a second report named {name!r}: name each student's file after them")
        _checked(str(path), report)
        reports[name] = report
    return reports


def summarise(reports: Mapping[str, Mapping], parts: Sequence[Part] | None = None) -> RoomReport:
    """The room from ``reports`` (machine name -> doctor's JSON). ``parts`` defaults to the book in the
    current folder. A stage a report leaves out (``doctor --stage ...``) counts as not checked there."""
    if not reports:
        raise PreflightError("no reports: give at least one `meshlab doctor --json` output")
    stages = {name: _checked(name, report) for name, report in reports.items()}
    counts = []
    for stage in STAGES:
        ready, cannot = [], {}
        for machine, entries in stages.items():
            entry = entries.get(stage, {"available": False, "reason": "not checked: the report was made with --stage",
                                        "fix": "run meshlab doctor --json without --stage"})
            if entry["available"]:
                ready.append(machine)
            else:
                cannot.setdefault((entry["reason"], entry["fix"]), []).append(machine)
        counts.append(StageCount(stage, tuple(ready), tuple((reason, fix, tuple(machines)) for (reason, fix), machines in cannot.items())))
    return RoomReport(tuple(reports), tuple(counts), tuple(book_parts(Path.cwd()) if parts is None else parts))


def _wrapped(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False) or [indent]


def render(room: RoomReport) -> str:
    """The summary as text: the stages, then each part, within 100 columns."""
    total = len(room.machines)
    lines = [f"{total} machine{'s' if total != 1 else ''}: {', '.join(room.machines)}", "", f"{'stage':<10}{'runs on':<10}why not, and the fix"]
    for count in room.stages:
        lines.append((f"{count.stage:<10}{f'{len(count.ready)} of {total}':<10}" + ("every machine" if not count.cannot else "")).rstrip())
        for reason, fix, machines in count.cannot:
            lines += _wrapped(f"{', '.join(machines)}: {reason}", " " * 4)
            if fix:
                lines += _wrapped(f"fix: {fix}", " " * 6)
    lines += ["", "what each chapter and lab uses beyond the model stage, and who runs its live sections on the model",
              f"{'part':<12}{'title':<36}{'uses':<26}model only on"]
    for part in room.parts:
        short = room.model_only(part)
        fallback = "; ".join(f"{machine} (no {', '.join(stages)})" for machine, stages in short.items()) or "nobody"
        head = f"{part.name:<12}{textwrap.shorten(part.title, 34, placeholder='...'):<36}{', '.join(part.stages) or '-':<26}"
        lines += textwrap.wrap(head + fallback, WIDTH, subsequent_indent=" " * 74, break_on_hyphens=False)
    return "\n".join(lines)


def to_json(room: RoomReport) -> str:
    """The summary as JSON: machines, stages (ready, and cannot grouped by reason), parts."""
    return json.dumps({
        "machines": list(room.machines),
        "stages": {count.stage: {"ready": list(count.ready),
                                 "cannot": [{"reason": reason, "fix": fix, "machines": list(machines)} for reason, fix, machines in count.cannot]}
                   for count in room.stages},
        "parts": [{"part": part.name, "title": part.title, "uses": list(part.stages), "model_only": {m: list(s) for m, s in room.model_only(part).items()}}
                  for part in room.parts],
    }, indent=2)
