"""Text output that fits the book's page: at most 100 columns, broken at words, never mid-word.

JupyterLab wraps a long output line wherever the window ends, so a table's rows fall apart and a
message is cut anywhere. The chapters print through these helpers instead: long lines are broken
at spaces with an indented continuation, structured values are pretty-printed to the width, and a
command line is broken where a shell joins it back.

    WIDTH    the page width in columns
    fit      a text with every line broken to WIDTH
    say      print a label and a value (str, dict, list...) within WIDTH
    command  a command line in shell syntax within WIDTH, which a shell reads back as the same argv
"""

from __future__ import annotations

import pprint
import re
import shlex
import textwrap
from collections.abc import Sequence

WIDTH = 100


def fit(text: str, indent: str = "    ", width: int = WIDTH) -> str:
    """Break each line longer than ``width`` at spaces; continuation lines carry ``indent``."""
    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip())]
        out.extend(textwrap.wrap(line, width, initial_indent="", subsequent_indent=lead + indent,
                                 break_long_words=False, break_on_hyphens=False, drop_whitespace=True)
                   or [line])
    return "\n".join(out)


#: ``say``'s value when it is given none (None is a value to show).
_NO_VALUE = object()


def say(label: str, value: object = _NO_VALUE, width: int = WIDTH) -> None:
    """Print ``label: value`` within ``width``: strings are broken at words, other values pretty-printed
    (a dict or list of literals still reads back equal with ``ast.literal_eval``); ``say(text)`` prints
    the text broken at words."""
    if value is _NO_VALUE:
        print(fit(label, width=width))
        return
    head = f"{label}: "
    if isinstance(value, str):
        print(fit(head + value, width=width))
        return
    body = pprint.pformat(value, width=width - 4, sort_dicts=False)
    if len(head) + len(body) <= width and "\n" not in body:
        print(head + body)
    else:
        print(head.rstrip())
        print(textwrap.indent(fit(body, width=width - 4), "    "))


def command(argv: Sequence[str], width: int = WIDTH, indent: str = "    ") -> str:
    """``argv`` as one shell command within ``width`` columns, copy-pasteable: arguments are quoted
    (``shlex.quote``) and a line that would be too long ends in `` \\``, the next one starting with
    ``indent``; an option stays on the line of the value after it (``-n istio-system``). An argument
    too long for a line (an inline ``sh -c`` script) is cut after its spaces into quoted pieces joined
    by a backslash-newline and no indent, which the shell concatenates back into the one argument,
    byte for byte. Only a single word longer than a line makes a longer line."""
    if not argv:
        raise ValueError("a command needs at least the program's name; got an empty argv")
    lines: list[str] = []
    line = shlex.quote(argv[0])
    for unit in _units(argv[1:], width - len(indent) - 2):
        text = shlex.join(unit)
        if len(line) + 1 + len(text) + 2 <= width:  # 2: room for a continuation's " \\"
            line += " " + text
        elif len(indent) + len(text) + 2 <= width or len(_pieces(unit[0], width - 2 - len(indent), width - 2)) == 1:
            lines.append(line + " \\")
            line = indent + text
        else:  # one argument longer than a line: in pieces
            pieces = _pieces(unit[0], width - 3 - len(line), width - 2)
            if len(shlex.quote(pieces[0])) > width - 3 - len(line):  # not one word fits here: a new line
                lines.append(line + " \\")
                line = indent
                pieces = _pieces(unit[0], width - 2 - len(indent), width - 2)
            else:
                line += " "
            for piece in pieces[:-1]:
                lines.append(line + shlex.quote(piece) + "\\")
                line = ""
            line += shlex.quote(pieces[-1])
    return "\n".join([*lines, line])


def _units(args: Sequence[str], room: int) -> list[list[str]]:
    """The arguments in the groups a line break must not split: an option and the value after it,
    when the two fit ``room``; every other argument alone."""
    units, index = [], 0
    while index < len(args):
        pair = list(args[index:index + 2])
        if len(pair) == 2 and pair[0].startswith("-") and not pair[1].startswith("-") and len(shlex.join(pair)) <= room:
            units.append(pair)
        else:
            pair = pair[:1]
            units.append(pair)
        index += len(pair)
    return units


def _pieces(arg: str, first: int, rest: int) -> list[str]:
    """``arg`` cut after runs of spaces, greedily, into pieces whose quoted form fits ``first`` columns
    (the first piece) and ``rest`` (the others) where a word allows; ``"".join(pieces) == arg``."""
    pieces, room = [""], first
    for chunk in re.findall(r"[^ ]* +|[^ ]+$", arg):
        if pieces[-1] and len(shlex.quote(pieces[-1] + chunk)) > room:
            pieces.append("")
            room = rest
        pieces[-1] += chunk
    return pieces
