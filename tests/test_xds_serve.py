"""``meshlab xds serve`` standalone: a config file in, a bootstrap file out, exchanges printed as JSON lines,
and a real gRPC xDS client served from it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter

from meshlab.cli import main
from meshlab.xds.echo import start_backend
from meshlab.xds.harness import run_clients


def test_serve_runs_the_control_plane_from_a_config_file(tmp_path):
    server, port = start_backend("v1")
    config = tmp_path / "services.json"
    config.write_text(json.dumps({"services": [{"name": "greeter", "routes": {"greeter-v1": 1}, "clusters": {"greeter-v1": [f"127.0.0.1:{port}"]}}]}))
    boot = tmp_path / "bootstrap.json"
    process = subprocess.Popen([sys.executable, "-m", "meshlab.cli", "xds", "serve", "--config", str(config), "--bootstrap", str(boot), "--debounce-after-ms", "10"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "meshlab xds: ADS on 127.0.0.1:" in process.stderr.readline()
        (records,) = run_clients(boot, ["greeter"], 3)
        assert Counter(r.get("backend") or r.get("error") for r in records) == {"v1": 3}
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=10)
        server.stop(grace=None)
    kinds = [json.loads(line)["kind"] for line in out.splitlines()]
    assert "subscribe" in kinds and "ACK" in kinds


def test_a_bad_config_is_refused_with_the_entry(tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"services": [{"name": "greeter", "routes": {"nope": 1}, "clusters": {}}]}))
    assert main(["xds", "serve", "--config", str(config)]) == 2
    assert "services[0] (greeter): route to unknown cluster 'nope'" in capsys.readouterr().err
