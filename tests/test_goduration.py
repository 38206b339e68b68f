"""Go durations as time.ParseDuration reads them: the form of istiod's and pilot-agent's settings."""

import pytest

from meshlab import goduration


@pytest.mark.parametrize(("text", "seconds"), [("100ms", 0.1), ("10s", 10), ("1.5s", 1.5), ("1m30s", 90), ("250us", 250e-6),
                                               ("250µs", 250e-6), (".5s", 0.5), ("0", 0), ("0s", 0), ("2h", 7200), ("1h1m1s1ms", 3661.001)])
def test_go_durations_are_read(text, seconds):
    assert goduration.seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["100", "ms", "1d", "1s5", "-1s", "", "5s extra", "five seconds", " 5s"])
def test_anything_else_is_refused_with_examples(text):
    with pytest.raises(ValueError, match=r"is not a Go duration such as 5s, 100ms or 1m30s"):
        goduration.seconds(text)
