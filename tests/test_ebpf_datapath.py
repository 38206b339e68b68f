"""The eBPF datapath's failure messages, without a kernel: they name the missing piece."""

from __future__ import annotations

import pytest

from meshlab.ebpf import datapath
from meshlab.ebpf.datapath import EbpfDatapath, EbpfError, compile_object


def test_a_missing_compiler_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EbpfError, match="compiling mesh.bpf.c: clang is not installed \\(apt-get install clang libbpf-dev bpftool"):
        compile_object(tmp_path / "mesh.bpf.o")


def test_the_mesh_networks_become_compile_time_constants():
    assert datapath._ip_as_int("10.244.0.0") == "0xaf40000" and datapath._ip_as_int("10.96.0.0") == "0xa600000"


def test_down_removes_mount_points_an_interrupted_up_left_and_is_idempotent(tmp_path):
    lab = EbpfDatapath(tmp_path, "mlz")
    lab.bpffs.mkdir()  # as an up that stopped after making its mount points, before mounting
    lab.cgroup_mount.mkdir()
    lab.down()
    assert not lab.bpffs.exists() and not lab.cgroup_mount.exists()
    lab.down()
    assert sorted(tmp_path.iterdir()) == []
