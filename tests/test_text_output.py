"""meshlab.viz.text keeps the book's text within 100 columns without cutting a word, and what it
reshapes still says the same: a wrapped text has the same words, a pretty-printed value reads back
equal, and a broken command line is the same argv
when bash reads it back."""

from __future__ import annotations

import ast
import contextlib
import io
import subprocess
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshlab.viz.text import WIDTH, command, fit, say

WORD = st.text(st.sampled_from("abcxyz019-./:'\"_=|<>*$"), min_size=1, max_size=30)
SHORT_WORDS = st.lists(WORD, min_size=0, max_size=60).map(" ".join)


@given(st.lists(st.text(st.sampled_from("abc-./ \n"), max_size=300), max_size=4).map("\n".join))
def test_fit_never_breaks_inside_a_word(text):
    assert fit(text).split() == text.split()


@given(st.lists(st.tuples(st.sampled_from(["", "  ", "      "]), SHORT_WORDS), max_size=5))
def test_every_line_of_fit_is_within_the_page_and_a_continuation_is_indented_under_its_line(paragraphs):
    lines = [lead + words for lead, words in paragraphs]
    assert fit("\n".join(lines)) == "\n".join(fit(line) for line in lines), "each line is fitted on its own"
    for (lead, _), line in zip(paragraphs, lines):
        first, *continued = fit(line).split("\n")
        assert all(len(out) <= WIDTH for out in [first, *continued])
        assert line.startswith(first) and all(out.startswith(lead + "    ") and out.strip() for out in continued)
        assert continued or first == line, "a line that fits is left as it is"


def test_fit_keeps_blank_lines_and_a_final_newline():
    assert fit("a\n\nb\n") == "a\n\nb\n"


@given(st.text(st.sampled_from("ab"), min_size=WIDTH + 1, max_size=3 * WIDTH), SHORT_WORDS)
def test_a_word_longer_than_the_page_stays_whole_on_its_own_line(long_word, words):
    out = fit(f"{words} {long_word} {words}").splitlines()
    assert [line.strip() for line in out if len(line) > WIDTH] == [long_word]


def _said(label, value) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        say(label, value)
    return printed.getvalue()


VALUES = st.recursive(st.integers() | st.booleans() | st.none() | SHORT_WORDS,
                      lambda inner: st.lists(inner, max_size=8) | st.dictionaries(WORD, inner, max_size=8), max_leaves=40)


@settings(max_examples=200)
@given(st.sampled_from(["counters", "the app saw", "proxy counters of the outbound sidecar"]), VALUES)
def test_say_fits_the_page_and_the_value_reads_back_equal(label, value):
    printed = _said(label, value)
    assert all(len(line) <= WIDTH for line in printed.splitlines()), printed
    assert printed.startswith(label + ":")
    body = printed[len(label) + 1:]
    if isinstance(value, str):
        assert body.split() == value.split()
    else:
        assert ast.literal_eval(textwrap.dedent(body.strip("\n") if body.startswith("\n") else body.strip())) == value


def test_say_keeps_a_short_value_on_the_label_line():
    assert _said("counters", {"mirrored": 148, "no_route": 1}) == "counters: {'mirrored': 148, 'no_route': 1}\n"


def _bash_reads(script: str) -> list[str]:
    """The argv bash hands to the command ``show`` when it reads ``script``."""
    done = subprocess.run(["bash", "-c", "show() { for arg in \"$@\"; do printf '%s\\0' \"$arg\"; done; }\n" + script], capture_output=True, timeout=10, check=True)
    return done.stdout.decode().split("\0")[:-1]


CHARACTERS = st.characters(min_codepoint=1, max_codepoint=0x2FF)
ARGS = st.lists(st.text(CHARACTERS, max_size=120) | st.lists(st.text(CHARACTERS, max_size=15), max_size=40).map(" ".join), max_size=12)


@settings(max_examples=150, deadline=None)
@given(ARGS)
def test_a_command_line_reads_back_as_the_same_argv(args):
    assert _bash_reads(command(["show", *args])) == args


@settings(max_examples=150, deadline=None)
@given(st.lists(SHORT_WORDS, max_size=12))
def test_a_command_line_of_short_words_fits_the_page(args):
    shown = command(["show", *args])
    assert all(len(line) <= WIDTH for line in shown.splitlines()), shown
    assert _bash_reads(shown) == args


def test_an_option_stays_with_its_value_and_a_long_script_is_cut_at_spaces():
    script = "for save in iptables-save iptables-nft-save; do " * 4 + "exit 3"
    argv = ["kubectl", "-n", "meshlab-sidecar", "debug", "pod-with-a-long-name", "--profile=netadmin", "--image=proxyv2",
            "--quiet", "--attach=true", "--", "sh", "-c", script, "sh"]
    shown = command(argv)
    lines = shown.splitlines()
    assert all(len(line) <= WIDTH for line in lines) and len(lines) > 2
    assert all(not line.endswith(" -n \\") for line in lines)
    pieces = [line for line in lines if line.endswith("'\\")]
    assert len(pieces) >= 2 and all(piece.endswith(" '\\") for piece in pieces), "the script is cut after spaces only"
    assert _bash_reads(shown.replace("kubectl", "show", 1)) == argv[1:]


def test_an_empty_command_is_refused():
    with pytest.raises(ValueError, match="program's name"):
        command([])
