"""Stand-ins for docker, kind, kubectl and istioctl: each records its arguments (and standard input)
and answers with the output recorded for the first matching argument prefix, so the kind stage's
command sequences can be tested without Docker.

    tools = StubTools(tmp_path)
    tools.reply("kind", ["get", "clusters"], stdout="meshlab\\n")
    tools.reply("kubectl", ["wait"], stderr="error: timed out waiting for the condition on nodes/x", code=1)
    ... run code with PATH=tools.bin ...
    tools.calls()   -> [{"tool": "kind", "args": [...], "stdin": "..."}, ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

STUB = '''#!{python}
import json, os, sys
from pathlib import Path
folder = Path({folder!r})
stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
args = sys.argv[1:]
with open(folder / "calls.jsonl", "a") as log:
    log.write(json.dumps({{"tool": {tool!r}, "args": args, "stdin": stdin, "kubeconfig": os.environ.get("KUBECONFIG")}}) + "\\n")
calls = [json.loads(line) for line in (folder / "calls.jsonl").read_text().splitlines()[:-1]]
def seen(tool, prefix):
    return any(c["tool"] == tool and c["args"][:len(prefix)] == prefix for c in calls)
for index, rule in enumerate(json.loads((folder / "replies.json").read_text())):
    if rule["after"] and not seen(*rule["after"]):
        continue
    if rule["tool"] == {tool!r} and args[:len(rule["prefix"])] == rule["prefix"]:
        counter = folder / f"served-{{index}}"
        served = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(served + 1))
        outputs = rule["stdout"]
        sys.stdout.write(outputs[min(served, len(outputs) - 1)]); sys.stderr.write(rule["stderr"]); sys.exit(rule["code"])
'''

TOOLS = ("docker", "kind", "kubectl", "istioctl")


class StubTools:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.rules: list[dict] = []
        self._save()
        for tool in TOOLS:
            path = self.bin / tool
            path.write_text(STUB.format(python=sys.executable, folder=str(folder), tool=tool))
            path.chmod(0o755)

    def _save(self) -> None:
        (self.folder / "replies.json").write_text(json.dumps(self.rules))

    def reply(self, tool: str, prefix: list[str], stdout: str | list[str] = "", stderr: str = "", code: int = 0, after: tuple[str, list[str]] | None = None) -> None:
        """Answer ``tool`` called with arguments starting with ``prefix``; earlier rules win. A list
        of outputs is served one per call, the last one repeating; ``after=(tool, prefix)`` makes the
        rule apply only once such a call has been made."""
        outputs = [stdout] if isinstance(stdout, str) else stdout
        self.rules.append({"tool": tool, "prefix": prefix, "stdout": outputs, "stderr": stderr, "code": code, "after": list(after) if after else None})
        self._save()

    def calls(self) -> list[dict]:
        log = self.folder / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def commands(self) -> list[str]:
        return [" ".join([call["tool"], *call["args"]]) for call in self.calls()]

    def paths(self) -> dict[str, str]:
        return {tool: str(self.bin / tool) for tool in TOOLS}
