"""A classroom on one Linux host: a real JupyterHub serving each student their own JupyterLab with the book.

``up`` checks everything first (root, the count, the ports, the programs, that students can run this
Python), then makes the accounts (``meshlab.classroom.accounts``), fills each home with the book and a
student copy of the labs (nbgrader's, from an nbgrader course whose exchange the students submit to),
writes a password per account (``meshlab.classroom.authenticator``) and starts JupyterHub with
configurable-http-proxy (npm) in front and jupyterhub-idle-culler as a service. Whatever fails undoes
what came before it. Each student's server runs as that student; a live lab started from a chapter is
then rootless (``meshlab.lab.rootless``): its namespaces live in the student's own user namespace and its
state in /tmp/meshlab-<uid>, out of the other students' reach. ``down`` stops the hub and every server,
archives the homes into the file the instructor names, then removes the accounts, their files and the
classroom's state.

    STATE_DIR, DEFAULT_URL, CULL_IDLE_SECONDS, CHP_VERSION   where the classroom lives; what the hub is set to
    ClassroomError  a classroom that cannot be started, queried or stopped, with the fix
    Classroom       the recorded classroom (accounts, addresses, hub PID); ``load``
    up              start a classroom; returns it and the passwords to hand out
    status          who is logged in, whose server runs, processes and memory per account
    start_server    start an account's server through the hub's API; how long until it was ready
    down            stop, archive the homes, remove everything
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from meshlab import course, npm
from meshlab.classroom import accounts
from meshlab.classroom.authenticator import new_password, write_table
from meshlab.ports import free_port, port_is_free
from meshlab.procfs import running, status_field

STATE_DIR = Path("/var/lib/meshlab/classroom")
DEFAULT_URL = "/lab/tree/book/00-how-to-use-this-book.ipynb"  # the chapter map opens first
CULL_IDLE_SECONDS = 3600  # a server idle this long is stopped (jupyterhub-idle-culler --timeout)
CHP = "configurable-http-proxy"
CHP_VERSION = "5.3.0"  # the npm release classroom.md ran on node 20 (it warns about node >= 22.12 and works)
#: nbgrader's JupyterLab plugins a student has no use for (making assignments, the course list); their
#: assignment list and validate button stay
STUDENT_HIDDEN_PLUGINS = ("create-assignment", "formgrader", "course-list")
SERVICE = "meshlab-classroom"  # the hub service whose token `status` uses
READY_TIMEOUT_S = 60


class ClassroomError(RuntimeError):
    """A classroom that cannot be started, queried or stopped; the message names the cause and the fix."""


@dataclass
class Classroom:
    students: list[str]
    instructor: str
    ip: str
    port: int
    hub_pid: int = 0
    accounts_made: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def save(self) -> None:
        (STATE_DIR / "classroom.json").write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls) -> Classroom:
        try:
            return cls(**json.loads((STATE_DIR / "classroom.json").read_text()))
        except FileNotFoundError:
            raise ClassroomError(f"no classroom on this host ({STATE_DIR / 'classroom.json'} is missing); "
                                 "start one with `meshlab classroom up --students N`") from None


def up(students: int, port: int = 8000, ip: str = "127.0.0.1", checkout: Path | None = None) -> tuple[Classroom, dict[str, str]]:
    """Start a classroom of ``students`` accounts and an instructor; returns it and account -> password."""
    checkout = Path(checkout or Path.cwd()).resolve()
    names = _preflight(students, port, ip, checkout)
    try:
        proxy = npm.install(npm.cache_root() / "classroom", {CHP: CHP_VERSION}, Path("node_modules/.bin") / CHP)
    except npm.NpmError as error:
        raise ClassroomError(str(error)) from None
    room = Classroom(names, accounts.INSTRUCTOR, ip, port)
    STATE_DIR.mkdir(parents=True)
    STATE_DIR.chmod(0o711)  # students pass through to the exchange; nothing else here is theirs to read
    try:
        room.save()
        exchange = STATE_DIR / "exchange"
        course_dir = STATE_DIR / "course"
        course.make_course(checkout / "labs", course_dir, exchange=exchange)
        course.release_all(course_dir)
        for name in [*names, room.instructor]:
            room.accounts_made.append(name)
            room.save()
            _furnish(accounts.create(name), checkout, course_dir, instructor=name == room.instructor)
        _own(course_dir, room.instructor)  # the solutions, gradebook and submissions: the instructor's alone
        course_dir.chmod(0o700)
        _own(exchange / course.COURSE_ID, room.instructor)  # nbgrader collect reads inbound/ (students may only write there)
        passwords = {name: new_password() for name in [*names, room.instructor]}
        write_table(STATE_DIR / "passwords.json", passwords)
        room.hub_pid = _start_hub(room, proxy)
        room.save()
    except BaseException:
        _teardown(room)
        raise
    return room, passwords


def status() -> dict:
    """Per account: whether its server runs, its last activity, its processes and their memory (RSS)."""
    room = Classroom.load()
    running = _alive(room.hub_pid)
    users = {user["name"]: user for user in _api(room, "/hub/api/users")} if running else {}  # a dead hub: the accounts still show
    report = {"url": room.url, "hub_pid": room.hub_pid, "hub_running": running, "accounts": []}
    for name in [*room.students, room.instructor]:
        user = users.get(name, {})
        uid = pwd.getpwnam(name).pw_uid if accounts.exists(name) else None
        pids = accounts.processes_of(uid) if uid is not None else []
        report["accounts"].append({
            "name": name, "role": "instructor" if name == room.instructor else "student",
            "server": "running" if user.get("servers", {}).get("", {}).get("ready") else "stopped",
            "last_activity": user.get("last_activity"), "processes": len(pids), "rss_mb": round(sum(int(status_field(pid, "VmRSS") or 0) for pid in pids) / 1024, 1),
            "live_labs": sorted(path.name for path in Path(f"/tmp/meshlab-{uid}").glob("*") if path.is_dir()) if uid is not None else [],
        })
    return report


def start_server(name: str, timeout: float = 180) -> float:
    """Start an account's server through the hub's API (as its admin page's Start button does) and wait
    until the hub says it is ready; the seconds that took."""
    room = Classroom.load()
    if name not in [*room.students, room.instructor]:
        raise ClassroomError(f"{name} is not an account of this classroom ({', '.join([*room.students, room.instructor])})")
    started = time.monotonic()
    _api(room, f"/hub/api/users/{name}/server", method="POST")
    while not _api(room, f"/hub/api/users/{name}").get("servers", {}).get("", {}).get("ready"):
        if time.monotonic() - started > timeout:
            raise ClassroomError(f"{name}'s server was not ready within {timeout:.0f} s:\n{_log_tail()}")
        time.sleep(0.1)
    return time.monotonic() - started


def down(archive: Path) -> Path:
    """Stop the hub and every server, write the homes to ``archive`` (a .tar.gz), then remove the
    accounts, their files and labs, and the classroom's state. The archive is written before anything
    is removed: if it cannot be, nothing is."""
    room = Classroom.load()
    archive = Path(archive).resolve()
    if not archive.name.endswith(".tar.gz"):
        raise ClassroomError(f"--archive {archive}: name a .tar.gz file for the students' work")
    if not archive.parent.is_dir():
        raise ClassroomError(f"--archive {archive}: the folder {archive.parent} does not exist")
    _stop_hub(room)
    _archive(room, archive)
    _teardown(room)
    return archive


# -- up's steps ---------------------------------------------------------------------------------
def _preflight(students: int, port: int, ip: str, checkout: Path) -> list[str]:
    """Everything that can be checked before anything is made."""
    if os.geteuid() != 0:
        raise ClassroomError("a classroom makes system accounts and runs each student's server as its own user: run it as root")
    names = _names(students)
    if (STATE_DIR / "classroom.json").exists():
        raise ClassroomError(f"a classroom is already set up on this host ({STATE_DIR}); `meshlab classroom down --archive FILE` ends it")
    if STATE_DIR.exists():
        raise ClassroomError(f"{STATE_DIR} is left from a classroom that never started (no classroom.json); remove it (rm -r) and start again")
    if taken := [name for name in [*names, accounts.INSTRUCTOR] if accounts.exists(name)]:
        raise ClassroomError(f"accounts {', '.join(taken)} already exist; remove them (userdel -r) or end their classroom first")
    if not (checkout / "labs").is_dir() or not (checkout / "notebooks").is_dir():
        raise ClassroomError(f"{checkout} is not a meshlab checkout (no labs/ and notebooks/); run from the repository's folder")
    _port_free(ip, port)
    for program in ("useradd", "userdel"):
        if shutil.which(program) is None:
            raise ClassroomError(f"{program} is missing (Debian: apt-get install passwd)")
    _readable_by_students(checkout)
    return names


def _names(students: int) -> list[str]:
    try:
        return accounts.student_names(students)
    except accounts.ClassroomAccountError as error:
        raise ClassroomError(str(error)) from None


def _port_free(ip: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise ClassroomError(f"--port {port}: a TCP port is 1 to 65535")
    if not port_is_free(ip, port):
        raise ClassroomError(f"{ip}:{port} cannot be used for the hub (taken, or not an address of this host); choose another with --port")


def _readable_by_students(checkout: Path) -> None:
    """Students' servers run this Python and import meshlab from the checkout: as an unprivileged user
    (nobody) it must be able to, or no student server could start."""
    done = subprocess.run([sys.executable, "-c", "import jupyterhub, jupyterlab, nbgrader, meshlab"], user=65534, group=65534,
                          extra_groups=[], cwd="/", capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": "/"})
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise ClassroomError(f"other users cannot run {sys.executable} with meshlab ({last}); students' servers would not start. "
                             f"Fix: put the checkout where every user can read it (no 0700 folder such as /root above {checkout}) "
                             "and run make there")


def _furnish(account: pwd.struct_passwd, checkout: Path, course_dir: Path, instructor: bool) -> None:
    """The book, the labs as nbgrader released them, nbgrader's settings, formgrader for the instructor only."""
    home = Path(account.pw_dir)
    (home / "book").mkdir()
    for chapter in sorted((checkout / "notebooks").glob("[0-9][0-9]-*.ipynb" if not instructor else "*.ipynb")):
        shutil.copy2(chapter, home / "book" / chapter.name)  # the instructor's guide for the instructor only
    shutil.copytree(course_dir / "release", home / "labs")
    jupyter = home / ".jupyter"
    jupyter.mkdir()
    config = course.student_config(course_dir) + f"c.Exchange.assignment_dir = {str(home / 'labs')!r}\n"
    if instructor:
        config += f"c.CourseDirectory.root = {str(course_dir)!r}\n"
    (jupyter / "nbgrader_config.py").write_text(config)
    extensions = {} if instructor else {"nbgrader.server_extensions.formgrader": False}
    (jupyter / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"jpserver_extensions": extensions}}, indent=1))
    (jupyter / "labconfig").mkdir()
    hidden = {} if instructor else {f"@jupyter/nbgrader:{plugin}": True for plugin in STUDENT_HIDDEN_PLUGINS}
    (jupyter / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": hidden}, indent=1))
    news = jupyter / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)  # the room has no internet: JupyterLab asks nobody about news
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    _own(home, account.pw_name)


def _own(folder: Path, name: str) -> None:
    account = pwd.getpwnam(name)
    for path in [folder, *folder.rglob("*")]:
        os.lchown(path, account.pw_uid, account.pw_gid)


def _config(room: Classroom, proxy: Path, token: str) -> str:
    """jupyterhub_config.py: every setting the classroom depends on, in one place."""
    bin_dir = Path(sys.executable).parent
    hub_port, api_port = free_port(), free_port()
    settings = {
        "JupyterHub.bind_url": f"http://{room.ip}:{room.port}",
        "JupyterHub.hub_ip": "127.0.0.1", "JupyterHub.hub_port": hub_port,
        "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{api_port}",
        "ConfigurableHTTPProxy.command": [str(proxy)],
        "JupyterHub.db_url": f"sqlite:///{STATE_DIR / 'jupyterhub.sqlite'}",
        "JupyterHub.cookie_secret_file": str(STATE_DIR / "jupyterhub_cookie_secret"),
        "JupyterHub.pid_file": str(STATE_DIR / "jupyterhub.pid"),
        "JupyterHub.authenticator_class": "meshlab.classroom.authenticator.ClassroomAuthenticator",
        "ClassroomAuthenticator.table_file": str(STATE_DIR / "passwords.json"),
        "Authenticator.allowed_users": set(room.students) | {room.instructor},
        "Authenticator.admin_users": {room.instructor},
        "Spawner.cmd": [str(bin_dir / "jupyterhub-singleuser")],
        "Spawner.default_url": DEFAULT_URL,
        "Spawner.environment": {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"},
        "Spawner.start_timeout": 120, "Spawner.http_timeout": 90,
        "JupyterHub.services": [
            {"name": "idle-culler", "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={CULL_IDLE_SECONDS}"]},
            {"name": SERVICE, "api_token": token},
        ],
        "JupyterHub.load_roles": [
            {"name": "idle-culler", "services": ["idle-culler"],
             "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]},
            {"name": SERVICE, "services": [SERVICE], "scopes": ["list:users", "read:users", "read:servers", "servers"]},
        ],
    }
    return "c = get_config()  # noqa: F821 (written by meshlab classroom up)\n" + "".join(f"c.{key} = {value!r}\n" for key, value in settings.items())


def _start_hub(room: Classroom, proxy: Path) -> int:
    token = secrets.token_hex(32)
    config = STATE_DIR / "jupyterhub_config.py"
    descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as written:
        written.write(_config(room, proxy, token))
    for private in ("token", "jupyterhub.sqlite"):  # the hub's database (users, hashed tokens): root's alone, as SQLite keeps its mode
        os.close(os.open(STATE_DIR / private, os.O_WRONLY | os.O_CREAT, 0o600))
    (STATE_DIR / "token").write_text(token)
    log = os.fdopen(os.open(STATE_DIR / "hub.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    hub = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f", str(config)], cwd=STATE_DIR,
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            raise ClassroomError(f"JupyterHub exited ({hub.returncode}) while starting:\n{_log_tail()}")
        try:
            _api(room, "/hub/api/")
            return hub.pid
        except ClassroomError:
            time.sleep(0.25)
    hub.terminate()
    raise ClassroomError(f"JupyterHub did not answer on {room.url} within {READY_TIMEOUT_S} s:\n{_log_tail()}")


def _log_tail(lines: int = 15) -> str:
    try:
        return "\n".join((STATE_DIR / "hub.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no hub log)"


def _api(room: Classroom, path: str, method: str = "GET"):
    """The hub's REST API with the classroom's service token. A POST that starts a server waits up to the
    hub's slow_spawn_timeout (10 s) before it answers 202, hence the longer timeout."""
    token = (STATE_DIR / "token").read_text().strip() if (STATE_DIR / "token").exists() else ""
    request = urllib.request.Request(room.url + path, headers={"Authorization": f"token {token}"}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5 if method == "GET" else 30) as answer:
            return json.loads(answer.read() or b"null")
    except (OSError, urllib.error.HTTPError, ValueError) as error:
        raise ClassroomError(f"the hub at {room.url} did not answer {path}: {error}") from None


# -- down's steps -------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    return pid > 0 and running(pid)


def _stop_hub(room: Classroom, grace: float = 30.0) -> None:
    """SIGTERM to the hub: it stops every user's server and the proxy it started; what outlives it is
    ended by PID (the proxy's from the PID file the hub wrote)."""
    for pid_file, pid in (("jupyterhub.pid", room.hub_pid), ("jupyterhub-proxy.pid", None)):
        recorded = pid or _pid_from(STATE_DIR / pid_file)
        if not _alive(recorded):
            continue
        os.kill(recorded, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _alive(recorded) and time.monotonic() < deadline:
            _reap(recorded)
            time.sleep(0.1)
        if _alive(recorded):
            os.kill(recorded, signal.SIGKILL)


def _pid_from(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _archive(room: Classroom, archive: Path) -> None:
    """Every account's home, as ``<account>/...``, owned by root and readable by root alone."""
    partial = archive.with_name(archive.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name in room.accounts_made:
            if accounts.exists(name):
                tar.add(pwd.getpwnam(name).pw_dir, arcname=name, filter=_without_caches)
    partial.rename(archive)


def _without_caches(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """The students' work, not what tools cached in their homes."""
    parts = Path(member.name).parts
    return None if len(parts) > 1 and parts[1] in (".cache", ".npm", ".local", ".ipython") else member


def _teardown(room: Classroom) -> None:
    """Remove what the classroom made: its hub, its accounts (their processes, homes and live labs' state),
    its state folder."""
    _stop_hub(room)
    problems = []
    for name in room.accounts_made:
        uid = pwd.getpwnam(name).pw_uid if accounts.exists(name) else None
        try:
            accounts.remove(name)
        except accounts.ClassroomAccountError as error:
            problems.append(str(error))
        if uid is not None:
            shutil.rmtree(f"/tmp/meshlab-{uid}", ignore_errors=True)  # a rootless lab's state, left by a killed kernel
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    with contextlib.suppress(OSError):
        STATE_DIR.parent.rmdir()  # /var/lib/meshlab, when nothing else of meshlab's is there
    if problems:
        raise ClassroomError("the classroom was removed, except: " + "; ".join(problems))
