"""Lab 11's checks: the reference codec passes both; each usual mistake in a codec is named."""

from __future__ import annotations

import pytest

from meshlab.check import CheckFailed, lab11
from meshlab.metaprotocol import FrameError


class Greedy(lab11.ReferenceKvCodec):
    """Consumes the whole buffer, not just its frame."""

    def decode(self, buffer):
        message = super().decode(buffer)
        if message is not None:
            message.consumed = len(buffer)
        return message


class Impatient(lab11.ReferenceKvCodec):
    """Calls an incomplete frame an error."""

    def decode(self, buffer):
        if len(buffer) < 14:
            raise FrameError("too short")
        return super().decode(buffer)


class Trusting(lab11.ReferenceKvCodec):
    """Never checks the value length against max_frame_size."""

    def check_size(self, length, what):
        pass


class Mute(lab11.ReferenceKvCodec):
    def error_reply(self, message, error):
        return lab11.frame(2, message.request_id, "", b"")


def test_the_reference_codec_passes_both_checks():
    lab11.check_codec(lambda: lab11.ReferenceKvCodec)
    assert lab11.check_live(lambda: lab11.ReferenceKvCodec)["replies"] == 4


@pytest.mark.parametrize(("codec", "hint"), [
    (Greedy, "only this frame's bytes, not the next one's"),
    (Impatient, "an incomplete frame means wait"),
    (Trusting, "a value length over max_frame_size"),
    (Mute, "error_reply must be a type-3 frame"),
])
def test_each_usual_mistake_is_named(codec, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab11.check_codec(lambda: codec)
