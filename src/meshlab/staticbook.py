"""The book as static HTML, from the stored outputs: what ``make book`` runs (``python -m meshlab.staticbook``).

jupyter-book 1.x (Sphinx) renders the stored notebooks without running them (``execute_notebooks: "off"``):
what a reader sees is what ``make notebooks`` stored, widget state included. Sphinx's pages find a widget's
controls and the figure it drew in that state, but only once ipywidgets' HTML widget manager runs in the
page; myst-nb loads it from a CDN by default, so a book read offline shows blank widgets. Here the manager
and RequireJS come from npm once, into a cache outside the checkout, and every build serves its own copy
(/work/shared/reference/classroom.md section 4, where this was tried).

The project is generated into a folder of its own (default ``_build/book`` in the checkout): the chapters
as stored, the labs as the student copies ``meshlab labs release`` writes (a published book does not give
the solutions away), the instructor guide when there is one, and chapter 00 as the landing page, since it
opens with the book's map and the reading paths.

    HTML_MANAGER        the npm package and version of the widget manager (ipywidgets 8.1's)
    REQUIREJS           the npm package and version of the AMD loader the manager's bundle needs
    REQUIRE_CONFIG      tells RequireJS where the manager's modules (and so their fonts) are served
    StaticBookError     the book cannot be built: what was wrong and the fix
    Contents            the notebooks the book is made of: root chapter, chapters, labs, instructor guide
    contents            find them in a checkout
    cache_root          MESHLAB_BOOK_CACHE, else $XDG_CACHE_HOME/meshlab/book, else ~/.cache/meshlab/book
    widget_scripts      the manager's scripts from npm, fetched into the cache once; their folder
    write_project       the jupyter-book project (_config.yml, _toc.yml, notebooks, vendored scripts)
    build               write the project, run ``jupyter-book build``; the path of index.html
    _why                the lines of a failed build's output that say why
    main                ``python -m meshlab.staticbook [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from meshlab import npm

#: The widget manager that renders ipywidgets 8.1's stored state. ipywidgets 8.1.9 accepts
#: html-manager ^1.0.1 (ipywidgets/_version.py ``__html_manager_version__``); 1.0.15 is the release built
#: with the same @jupyter-widgets/controls (^5.0.13) as ipywidgets 8.1.9's JupyterLab manager 5.0.16
#: (``npm view @jupyter-widgets/html-manager@1.0.15 dependencies``). Its ``dist/embed-amd.js`` is
#: one AMD bundle: base, controls and output widgets, plus the icon fonts it loads beside itself.
HTML_MANAGER = ("@jupyter-widgets/html-manager", "1.0.15")
#: embed-amd.js defines AMD modules, so RequireJS must be loaded before it (ipywidgets' embedding docs;
#: myst-nb 1.4.0's default ``nb_ipywidgets_js`` loads the two in this order).
REQUIREJS = ("requirejs", "2.3.8")

#: Where the scripts go in the project: Sphinx copies ``html_static_path`` into ``_static``. Not the
#: project's own ``_static``: jupyter-book adds every ``*.js`` there to every page, which loaded the
#: manager twice (classroom.md section 4).
VENDOR = "_vendor"
WIDGETS = "widgets"
#: Where RequireJS finds the manager's modules. The bundle's modules take their public path (where
#: their icon fonts are) from their own AMD module URI, which RequireJS resolves against the page's folder
#: (``notebooks/@jupyter-widgets/...``) unless told otherwise. The folder is found from the page's
#: ``data-content_root``, which Sphinx >= 7.2 writes on every page's <html> element.
REQUIRE_CONFIG = """// Written by meshlab.staticbook: the widget manager's AMD modules live in _static/widgets.
(function () {
  var widgets = new URL(document.documentElement.dataset.content_root + "_static/widgets", document.baseURI).href;
  require.config({paths: {"@jupyter-widgets": widgets, "@jupyter-widgets/html-manager/dist": widgets}});
})();
"""
#: The file that marks a folder as a build this module made, so a rebuild may empty it.
MARKER = ".meshlab-static-book"
ROOT_CHAPTER = "00-how-to-use-this-book"
TITLE = "meshlab: how service meshes work inside"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: An exception's own line, e.g. ``nbformat.reader.NotJSONError: Notebook does not appear to be JSON``.
EXCEPTION = re.compile(r"[\w.]+(Error|Exception): \S")
#: Sphinx's progress lines, e.g. ``reading sources... [ 50%] notebooks/01-broken``.
PROGRESS = re.compile(r"\[\s*\d+%\] (\S+)")


class StaticBookError(RuntimeError):
    """The static book cannot be built; the message says what was wrong and how to fix it."""


@dataclass(frozen=True)
class Contents:
    """The stored notebooks the book is made of (paths in the checkout)."""

    root: Path
    chapters: list[Path]
    labs: list[Path] = field(default_factory=list)
    instructors: Path | None = None


def contents(checkout: Path) -> Contents:
    """Chapters ``notebooks/NN-*.ipynb`` in order (chapter 00 is the root), ``labs/NN-*.ipynb`` and
    ``notebooks/instructors.ipynb`` if present."""
    notebooks = checkout / "notebooks"
    chapters = sorted(notebooks.glob("[0-9][0-9]-*.ipynb"))
    if not chapters:
        raise StaticBookError(f"no chapters (notebooks/NN-*.ipynb) in {checkout}: run from the repository root, "
                              "or store the executed chapters first with make notebooks")
    root = notebooks / f"{ROOT_CHAPTER}.ipynb"
    if root not in chapters:
        raise StaticBookError(f"{root} is missing: chapter 00 is the book's landing page (its map and reading paths); "
                              "run make notebooks to store it")
    instructors = notebooks / "instructors.ipynb"
    return Contents(root, [chapter for chapter in chapters if chapter != root], sorted((checkout / "labs").glob("[0-9][0-9]-*.ipynb")),
                    instructors if instructors.exists() else None)


def cache_root() -> Path:
    if folder := os.environ.get("MESHLAB_BOOK_CACHE"):
        return Path(folder)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "meshlab" / "book"


def _wanted(package: str, member: str) -> str | None:
    """The file name under which a package's tarball member goes into the widgets folder, or None.

    From html-manager: ``dist/embed-amd.js`` and the fonts it loads from its own folder (not the
    non-AMD bundle, its source map or the library build); from requirejs: ``require.js``."""
    name = member.removeprefix("package/")
    if package == REQUIREJS[0]:
        return "require.js" if name == "require.js" else None
    folder, _, base = name.rpartition("/")
    if folder != "dist" or base in ("embed.js", "libembed-amd.js") or base.endswith((".map", ".txt")):
        return None
    return base


def widget_scripts() -> Path:
    """The folder with ``require.js``, ``embed-amd.js`` and its fonts, at the pinned versions.

    ``npm pack`` fetches the two packages' tarballs (no dependency tree: embed-amd.js is self-contained)
    into a scratch folder; the files are unpacked into ``<cache>/widgets-<versions>`` and reused after."""
    folder = cache_root() / f"widgets-{HTML_MANAGER[1]}-{REQUIREJS[1]}"
    if (folder / "require.js").exists() and (folder / "embed-amd.js").exists():
        return folder
    if shutil.which("npm") is None:
        raise StaticBookError(f"the static book's widget scripts come from npm, which is not on PATH (fix: {npm.NODE_FIX})")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="npm-pack-", dir=folder.parent) as scratch:
        specs = [f"{name}@{version}" for name, version in (HTML_MANAGER, REQUIREJS)]
        done = subprocess.run(["npm", "pack", "--json", *specs], cwd=scratch, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-10:])
            raise StaticBookError(f"npm pack {' '.join(specs)} failed (is the npm registry reachable?):\n{tail}")
        unpacked = Path(scratch) / "widgets"
        unpacked.mkdir()
        for packed in json.loads(done.stdout):
            with tarfile.open(Path(scratch) / packed["filename"]) as tarball:
                for member in tarball.getmembers():
                    target = _wanted(packed["name"], member.name)
                    if member.isfile() and target:
                        (unpacked / target).write_bytes(tarball.extractfile(member).read())  # type: ignore[union-attr]
        if not ((unpacked / "require.js").exists() and (unpacked / "embed-amd.js").exists()):
            raise StaticBookError(f"npm pack {' '.join(specs)} gave no require.js or dist/embed-amd.js; "
                                  "the pinned versions may have changed their layout")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(unpacked, folder)
    return folder


def _page(notebook: Path, checkout: Path) -> str:
    """A notebook's entry in _toc.yml: its path in the project, without the suffix."""
    return notebook.relative_to(checkout).with_suffix("").as_posix()


def _config() -> dict:
    """_config.yml: run nothing, serve the vendored widget manager, link to no repository."""
    return {
        "title": TITLE,
        "author": "the meshlab authors",
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "off"},
        # No public repository to point at; jupyter-book's default URL is its own, and a URL it cannot
        # recognise as GitHub's aborts the build unless repository_provider is set (classroom.md section 4).
        "repository": {"url": ""},
        "html": {"use_repository_button": False, "use_issues_button": False, "use_edit_page_button": False,
                 "home_page_in_navbar": True},
        "launch_buttons": {"binderhub_url": "", "jupyterhub_url": "", "colab_url": "", "thebe": False},
        "sphinx": {"config": {
            "html_static_path": [VENDOR],
            # Keys are paths under _static; the order is the loading order (RequireJS first).
            "nb_ipywidgets_js": {f"{WIDGETS}/require.js": {}, f"{WIDGETS}/require-config.js": {}, f"{WIDGETS}/embed-amd.js": {}},
        }},
    }


def _toc(found: Contents, checkout: Path) -> dict:
    """_toc.yml: chapter 00 as the root, then parts for the chapters, the labs and the instructors."""
    parts = [{"caption": "Chapters", "chapters": [{"file": _page(chapter, checkout)} for chapter in found.chapters]}]
    if found.labs:
        parts.append({"caption": "Labs", "chapters": [{"file": _page(lab, checkout)} for lab in found.labs]})
    if found.instructors:
        parts.append({"caption": "For instructors", "chapters": [{"file": _page(found.instructors, checkout)}]})
    return {"format": "jb-book", "root": _page(found.root, checkout), "parts": parts}


def _prepare(out: Path) -> None:
    """Empty ``out`` if it is a build of ours; refuse a folder that holds anything else."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise StaticBookError(f"{out} is not empty and is not a static book build (no {MARKER} in it); "
                                  "give an empty or new folder with --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by python -m meshlab.staticbook; emptied on every build\n")


def write_project(checkout: Path, out: Path) -> Contents:
    """Write the jupyter-book project for the notebooks in ``checkout`` into ``out`` (emptied first)."""
    from meshlab.labs import LabFormatError, student_copy

    found = contents(checkout)
    scripts = widget_scripts()
    _prepare(out)
    for notebook in [found.root, *found.chapters, *([found.instructors] if found.instructors else [])]:
        target = out / notebook.relative_to(checkout)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(notebook, target)
    for lab in found.labs:
        target = out / lab.relative_to(checkout)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            released = student_copy(json.loads(lab.read_text()), lab.name)
        except LabFormatError as error:
            raise StaticBookError(f"the book shows each lab's student copy, and {lab} cannot be released: {error}") from error
        target.write_text(json.dumps(released, indent=1, ensure_ascii=False) + "\n")
    shutil.copytree(scripts, out / VENDOR / WIDGETS)
    (out / VENDOR / WIDGETS / "require-config.js").write_text(REQUIRE_CONFIG)
    (out / "_config.yml").write_text(yaml.safe_dump(_config(), sort_keys=False))
    (out / "_toc.yml").write_text(yaml.safe_dump(_toc(found, checkout), sort_keys=False))
    return found


def build(checkout: Path, out: Path | None = None) -> Path:
    """Build the static book of ``checkout`` into ``out`` (default ``<checkout>/_build/book``); the path
    of its index.html. Sphinx's warnings are errors (``-W``): a broken cross-reference fails the build."""
    checkout = checkout.resolve()
    out = (out or checkout / "_build" / "book").resolve()
    write_project(checkout, out)
    program = Path(sys.executable).parent / "jupyter-book"
    if not program.exists():
        raise StaticBookError(f"{program} not found: jupyter-book 1.x is meshlab's dependency (fix: pip install -e '.[test]' or make)")
    done = subprocess.run([str(program), "build", "--builder", "html", "-W", "-n", "--keep-going", str(out)],
                          cwd=out, capture_output=True, text=True, check=False)
    index = out / "_build" / "html" / "index.html"
    if done.returncode != 0 or not index.exists():
        (out / "build.log").write_text(done.stdout + done.stderr)
        raise StaticBookError(f"jupyter-book build failed (its whole output is in {out / 'build.log'}):\n{_why(done.stdout + done.stderr)}")
    return index


def _why(output: str) -> str:
    """What a failed build said that matters: Sphinx's warnings and errors, the exceptions' own lines (not
    jupyter-book's traceback around them) and the document it was on."""
    lines = [ANSI.sub("", line).rstrip() for line in output.splitlines()]
    said = [line for line in lines if "WARNING" in line or "ERROR" in line or EXCEPTION.match(line)]
    progress = [PROGRESS.search(line) for line in lines]
    documents = [found.group(1) for found in progress if found]
    if documents:
        said.append(f"the last document Sphinx worked on: {documents[-1]}")
    return "\n".join(list(dict.fromkeys(said))[-20:]) or "\n".join(lines[-15:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshlab.staticbook", description="Build the book as static HTML from the stored notebooks.")
    parser.add_argument("--out", type=Path, default=None, help="build folder (default: _build/book in the checkout)")
    parser.add_argument("--checkout", type=Path, default=Path.cwd(), help="the repository's root (default: the current folder)")
    args = parser.parse_args(argv)
    try:
        index = build(args.checkout, args.out)
    except StaticBookError as error:
        print(f"meshlab.staticbook: {error}", file=sys.stderr)
        return 1
    print(f"the static book is at {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
