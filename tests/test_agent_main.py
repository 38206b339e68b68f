"""``python -m meshlab.agent`` refuses settings it cannot use with the reason and status 2, before it
binds anything (the process itself runs in tests/live/test_agent_live.py, in a lab pod)."""

from __future__ import annotations

import pytest

from meshlab.agent.__main__ import main


@pytest.mark.parametrize(("argv", "env", "reason"), [
    (["--certs", "/nonexistent"], {}, "cert-chain.pem"),
    (["--dns-upstream", "nope"], {}, "expected HOST:PORT"),
    ([], {"ISTIO_KUBE_APP_PROBERS": "{bad"}, "ISTIO_KUBE_APP_PROBERS is not JSON"),
    ([], {"ISTIO_PROMETHEUS_ANNOTATIONS": '{"port":"15020"}'}, "agent's own port 15020"),
    ([], {"MINIMUM_DRAIN_DURATION": "5"}, "Go duration"),
], ids=["missing certificates", "bad upstream", "bad probers", "metrics loop", "bad duration"])
def test_a_setting_it_cannot_use_ends_the_agent_with_the_reason(tmp_path, monkeypatch, capsys, argv, env, reason):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    base = ["--pod", "web", "--ip", "10.0.0.5", "--workdir", str(tmp_path)]
    assert main(base + (argv if "--dns-upstream" in argv else [*argv, "--dns-upstream", "127.0.0.1:9"])) == 2
    assert reason in capsys.readouterr().err
