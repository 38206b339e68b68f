"""The table "could pilot-agent be merged into Envoy?": every job the package implements has a row,
every row names its sources, and the text fits a notebook's 100 columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlab.agent.jobs import JOBS, table_text

ISTIO = Path("/root/go/pkg/mod/istio.io/istio@v0.0.0-20260826214018-9739e10eb9d7")


def test_each_job_says_what_is_missing_and_where_it_comes_from():
    assert [job.job for job in JOBS] == ["bootstrap", "certificates (SDS + CA client)", "xDS proxy", "DNS proxy", "health probes",
                                         "metrics merge", "drain and supervision"]
    assert all(job.needs and job.envoy_has and job.missing and job.sources for job in JOBS)


def test_the_istio_sources_named_exist_when_istios_source_is_at_hand():
    if not ISTIO.exists():
        pytest.skip(f"Istio's source is not in the Go module cache ({ISTIO})")
    for job in JOBS:
        for source in job.sources.split(";")[0].split(", "):
            path = source.split(" ")[0]
            assert (ISTIO / path).exists(), f"{job.job}: {path}"


def test_the_table_fits_100_columns():
    assert max(len(line) for line in table_text().splitlines()) <= 100
