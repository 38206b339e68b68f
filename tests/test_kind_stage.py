"""The kind stage's tools, where a reader has them (skipped here: no Docker engine on these machines)."""

from __future__ import annotations

import subprocess

import pytest


@pytest.mark.kind
@pytest.mark.parametrize("command", [["docker", "info", "--format", "{{.ServerVersion}}"], ["kind", "version"], ["kubectl", "version", "--client"], ["istioctl", "version", "--remote=false"]])
def test_kind_stage_tools_answer(command):
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
