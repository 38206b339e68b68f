"""``make lab`` starts JupyterLab on the textbook, prints the URL with its token, and serves /lab."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from ports import free_port

ROOT = Path(__file__).resolve().parents[1]
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab/tree/notebooks/00-how-to-use-this-book\.ipynb\?token=([0-9a-f]{48})")


def wait_for_url(process: subprocess.Popen, seconds: float) -> re.Match:
    deadline = time.monotonic() + seconds
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen.append(line)
        match = URL.search(line)
        if match:
            return match
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"make lab printed no URL with a token within {seconds:.0f} s; it printed: {''.join(seen)[-2000:]}")


def get(url: str, seconds: float) -> tuple[int, str]:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_make_lab_serves_the_textbook_with_its_token(tmp_path):
    port = free_port()
    env = dict(os.environ, PORT=str(port), IP="127.0.0.1", JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), IPYTHONDIR=str(tmp_path / "ipython"), MPLCONFIGDIR=str(tmp_path / "mpl"))
    process = subprocess.Popen(["make", "-s", "lab"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        match = wait_for_url(process, 120)
        assert int(match.group(1)) == port
        token = match.group(2)
        status, page = get(f"http://127.0.0.1:{port}/lab?token={token}", 60)
        assert status == 200 and "JupyterLab" in page
        status, tree = get(f"http://127.0.0.1:{port}/api/contents/notebooks?token={token}", 30)
        assert status == 200 and "01-from-kubernetes-to-istio.ipynb" in tree
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(request, timeout=10).close()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        process.stdout.close()


def test_make_lab_on_a_busy_port_says_so():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(["make", "-s", "lab", f"PORT={port}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert f"port {port} on 127.0.0.1 is busy" in done.stderr and "PORT=" in done.stderr
