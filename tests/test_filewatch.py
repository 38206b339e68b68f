"""ChangedFile: a rewritten file is noticed once per version, an absent one never."""

from __future__ import annotations

import os

from meshlab.filewatch import ChangedFile


def test_a_file_is_noticed_once_per_version(tmp_path):
    path = tmp_path / "table.json"
    watch = ChangedFile(path)
    assert not watch.changed(), "a file that does not exist yet is no change"
    path.write_text("{}")
    os.utime(path, ns=(1, 1_000))
    assert watch.changed() and not watch.changed()
    partial = tmp_path / "table.tmp"
    partial.write_text('{"a": 1}')
    os.utime(partial, ns=(1, 2_000))
    os.replace(partial, path)  # how the lab writes: a rename
    assert watch.changed() and not watch.changed()


def test_no_path_is_never_a_change():
    assert not ChangedFile(None).changed()
