# %% [markdown]
# # Instructor guide: running a meshlab workshop
#
# This notebook is for the person at the front of the room. It says how a workshop runs with meshlab
# (one host serving every student, graded labs), gives two timed tracks (a half day on the model stage
# only, a full day with the live stage), and, lab by lab, the exercises, the wrong answers the checks
# recognise, questions for discussion, and what the chapters' kind sections print on a real cluster, to
# show on a projector where the room has no Docker. Every table of mistakes below is read from the
# checks themselves (`MISTAKES` in `meshlab.check.labNN`), so it says what a student will see.
#
# **Before the workshop you can**
# - run the pre-flight on the students' `meshlab doctor --json` files and read what the room can run;
# - pick a track and know which sections each machine runs on the model stage instead;
# - recognise a lab's usual wrong answers from the hint a student reads out to you.

# %% [markdown]
# ## 1 · How a workshop runs
#
# | when | who | command | what it does |
# |---|---|---|---|
# | a week before | each student | `meshlab doctor --json > NAME.json` | probes the student's own machine for every stage |
# | a few days before | instructor | `meshlab classroom preflight *.json` | what the room can run (section 2); `--json` for scripts |
# | the morning | instructor, as root | `meshlab classroom up --students N [--port P] [--ip IP]` | a JupyterHub on this host, N student accounts, a password per account printed once |
# | during | instructor | `meshlab classroom status [--json]` | who is logged in, whose server and live lab run |
# | during | each student | the Assignments tab, or `nbgrader submit LAB` in `~/labs` | hands in a lab (`up` released every lab to nbgrader's exchange) |
# | after the labs | `mlinstructor` | Formgrader, or `nbgrader collect LAB`, `autograde LAB`, `generate_feedback LAB` | scores each submission; the feedback shows each check's hint |
# | the end | instructor, as root | `meshlab classroom down --archive FILE` | saves the students' work to FILE, then removes accounts, servers, labs and homes |
#
# Each student gets a JupyterLab with the book and a fresh copy of the labs, in a home only that student
# can read; a student's live lab runs rootless as that student, in a user namespace of its own with its
# state in `/tmp/meshlab-<uid>`, so students cannot see or stop each other's pods. A student on the hub has the host's stages; the pre-flight
# matters for students who work on their own laptops.
#
# A lab's check cells are nbgrader's autograded cells (a point each): a wrong answer fails with the hint
# the tables in section 4 list, which nbgrader's feedback shows. A check that needs the live stage, on a
# machine without it, scores 0 and says it was not graded there, with doctor's reason. Outside a
# classroom, `meshlab labs course DIR` makes the same nbgrader course in a folder of your choice.

# %% [markdown]
# ## 2 · The pre-flight
#
# Students run `meshlab doctor --json` beforehand and send the file. `meshlab classroom preflight
# FILES...` summarises them: per stage, how many machines run it and why the others cannot (machines
# with the same reason grouped, with doctor's fix), then each chapter and lab with the stages it uses
# beyond the model and who would run its live sections on the model stage instead. What a chapter uses
# is read from its own imports (`meshlab.lab` is the live stage, `meshlab.upstream` and `meshlab.kind`
# the others) and from the stages it asks `doctor` about, so the list cannot drift from the book.
#
# Below, the same summary for a made-up room of three (not this machine, whose report would differ
# from yours): a Linux laptop with root, a Mac, and a Linux laptop without root, where the live lab
# runs rootless but eBPF needs root. The reasons are doctor's own words for those machines.

# %%
from pathlib import Path

from meshlab.classroom.preflight import LIVE_STAGES, book_parts, render, summarise
from meshlab.viz.text import fit

ROOT = Path.cwd().parent  # the notebook runs in notebooks/
PARTS = book_parts(ROOT)
NO_DOCKER = ("kind needs a running Docker daemon: docker info failed (Cannot connect to the Docker daemon at "
             "unix:///var/run/docker.sock. Is the docker daemon running?)")
DOCKER_FIX = "start the Docker daemon (systemctl start docker, or open Docker Desktop); `docker info` must work as this user"
NO_GO = ("go not found", "install Go 1.26 (go.dev/doc/install), then make upstream")
NO_BROWSER = ("no chromium at /usr/bin/chromium", "apt-get install chromium (make test does this when run as root), or set MESHLAB_CHROMIUM")


def stage(available: bool, reason: str, fix: str = "") -> dict:
    return {"available": available, "reason": reason, "fix": "" if available else fix}


MODEL = stage(True, "Python 3.11.2 with matplotlib, networkx, simpy, ipywidgets, numpy, grpc, envoy, cryptography, jwt, spiffe")
ROOM = {
    "linux-root": {"stages": {
        "model": MODEL,
        "live": stage(True, "network namespaces work as root; ip, iptables and xtables-monitor present"),
        "ebpf": stage(True, "kernel 6.8.0 with BTF; clang, bpftool and libbpf headers present; root"),
        "browser": stage(False, *NO_BROWSER),
        "upstream": stage(False, *NO_GO),
        "kind": stage(False, NO_DOCKER, DOCKER_FIX)}},
    "macbook": {"stages": {
        "model": MODEL,
        "live": stage(False, "the live lab needs a Linux kernel; this is Darwin", "use a Linux machine or VM; the model stage works here"),
        "ebpf": stage(False, "eBPF needs a Linux kernel", "use a Linux machine or VM (kernel >= 5.10 recommended)"),
        "browser": stage(False, *NO_BROWSER),
        "upstream": stage(False, *NO_GO),
        "kind": stage(False, NO_DOCKER, DOCKER_FIX)}},
    "linux-user": {"stages": {
        "model": MODEL,
        "live": stage(True, "not root: the lab runs inside a user namespace, where its proxy marks its sockets (0x539) "
                            "instead of running as uid 1337; the eBPF datapath needs root"),
        "ebpf": stage(False, "loading BPF programs needs CAP_BPF and CAP_NET_ADMIN", "run as root"),
        "browser": stage(False, *NO_BROWSER),
        "upstream": stage(True, "go version go1.26.8 linux/amd64; istio.io/istio (Istio 1.30.3) in the module cache; "
                                "programs built: pilot-agent, istioctl"),
        "kind": stage(False, NO_DOCKER, DOCKER_FIX)}},
}
room = summarise(ROOM, PARTS)
print(render(room))

# %% [markdown]
# Read it from the bottom: a part whose "model only on" is *nobody* runs in full on every machine. Here
# the Mac runs every live section on the model stage, and `linux-user` only chapter 03's and lab 03's
# eBPF. `uses` leaves out what runs on loopback (chapters 01, 05, 11, 13 and 14 have such sections): a
# real gRPC client and server, or a proxy between thrift's own client and servers, need only Python.
# Upstream and kind sections are optional; a machine without them prints why and moves on.

# %% [markdown]
# ## 3 · Two tracks
#
# Counted from the chapters as they are: a chapter's sections are presented, not all read; a lab's
# exercises are done in the room. Chapter 00 estimates an hour per chapter read alone and forty minutes
# per lab; presenting chosen sections takes less, doing a lab with help about as long.

# %%
import re


def lab_part(number: str):
    return next(part for part in PARTS if part.name == f"lab {number}")


def exercises(number: str) -> list[str]:
    """A lab's exercises as its headings name them."""
    source = next((ROOT / "labs").glob(f"{number}-*.py")).read_text()
    return re.findall(r"^# ## (Exercise[^\n]*)", source, re.M)


def show_track(title: str, start: str, sessions: list[tuple[int, str, str]]) -> None:
    """Sessions (minutes, what, which sections or exercises) with their clock times."""
    hours, minutes = map(int, start.split(":"))
    clock = hours * 60 + minutes
    print(title)
    print(f"{'time':<7}{'min':>4}  {'session':<32}sections")
    for length, what, sections in sessions:
        lines = fit(f"{clock // 60:02}:{clock % 60:02}  {length:>4}  {what:<32}{sections}").split("\n")
        print("\n".join(lines[:1] + [" " * 45 + line.strip() for line in lines[1:]]))
        clock += length
    print(f"{clock // 60:02}:{clock % 60:02}  end ({sum(length for length, _, _ in sessions)} minutes)")


HALF_DAY = [
    (15, "welcome, pre-flight, log in", "the hub's URL and one-time passwords; who falls back to the model"),
    (25, "chapter 01", "§1 what grows when services multiply, §2 one call with and without sidecars"),
    (25, "lab 01", "exercises 1-2: blast radius, request success"),
    (30, "chapter 02", "§1 what istio-init runs, §2 walking packets through the rules, §3 DNS capture"),
    (20, "lab 02, exercise 1", "the capture configuration, checked by walking the rules (exercise 2 is live)"),
    (15, "break", ""),
    (25, "chapter 05", "§2 the chain of resources, §3 versions, nonces, ACK and NACK, §5 live on loopback"),
    (30, "lab 05", "exercises 1-2: read the NACK, fix it (gRPC's own xDS client on loopback)"),
    (20, "chapter 06", "§1 debounce, §2 the push queue and the throttle"),
    (20, "lab 06, exercise 1", "DEBOUNCE_AFTER and DEBOUNCE_MAX for an objective"),
    (15, "wrap-up", "the chapters' What to remember; what to read next (chapter 00's reading paths)"),
]
# the half day runs on the model stage only: its labs use no live stage (lab 02's exercise 1 is its model half)
assert all(not set(lab_part(n).stages) & set(LIVE_STAGES) for n in ("01", "05", "06"))
show_track("Half day, model stage only (any laptop, or the hub)", "09:00", HALF_DAY)

# %%
FULL_DAY = [
    (15, "welcome, pre-flight, log in", "who runs which live section on the model (section 2's summary)"),
    (20, "chapter 01", "§1-2, and §3 live on loopback: the mesh as a library"),
    (40, "chapter 02", "§1-3, then §4 live: the same rules in your kernel, netfilter's trace"),
    (30, "lab 02", "exercise 1 (model), exercise 2 (live: prove the bypass from the sidecar's hop log)"),
    (15, "break", ""),
    (35, "chapter 03", "§1 what a request crosses, §2 how Merbridge replaces iptables, §3 live eBPF"),
    (30, "lab 03", "exercises 1-2; exercise 2's counters from the kernel where the eBPF stage runs"),
    (60, "lunch", ""),
    (30, "chapter 04", "§1-2 the four models, proxies fail; §4 live: sidecars vs one proxy per node"),
    (20, "lab 04", "exercises 1-2: a model under constraints, with its numbers"),
    (30, "chapters 05 and 06", "05 §3 ACK and NACK; 06 §1 debounce, §5 live against real xDS clients"),
    (25, "lab 06", "exercise 1, and exercise 2 (open: headroom on a saturated istiod)"),
    (15, "break", ""),
    (40, "chapter 13", "§1-4 SPIFFE IDs, SVIDs, attestation; §7 live lab: pods talking mutual TLS"),
    (30, "lab 13", "exercise 1 (entries), exercise 2 (live: the allow-list, an impersonation refused)"),
    (15, "wrap-up", "What to remember; labs 08, 09 and 14 for those who want more"),
]
show_track("Full day, with the live stage (Linux; root for eBPF)", "09:00", FULL_DAY)

# %% [markdown]
# The full day assumes the live stage on most machines. Where section 2 shows machines without it, pair
# their students with a neighbour for the live sections, or show the live cells on the projector: their
# stored outputs are what a live run prints. Chapter 03's eBPF needs root; on a hub, students run
# rootless, so show §3 from the instructor's machine.

# %% [markdown]
# ## 4 · Per lab: exercises, recognised mistakes, discussion
#
# Each table lists what a lab's checks recognise: the wrong answer, in a teacher's words, and the hint
# the check prints for it (a student reads you the hint; the left column says what they did). A check
# also rejects answers it recognises no mistake in, with the expected value; and answers of the wrong
# shape (a list for a set, say), with what is accepted; those are not listed.
# `tests/test_check_mistakes.py` writes each row's wrong answer and checks that the check prints the hint.

# %%
import importlib
import textwrap


def show_lab(number: str) -> None:
    """A lab's exercises, then its checks' recognised mistakes, grouped by the function the student writes."""
    part, checks = lab_part(number), importlib.import_module(f"meshlab.check.lab{number}")
    print(f"Lab {number} · {part.title}" + (f"   (uses: {', '.join(part.stages)})" if part.stages else "   (model stage)"))
    for exercise in exercises(number):
        print(f"  {exercise}")
    print(f"\n{'the wrong answer':<40}the check says")
    exercise = None
    for mistake in checks.MISTAKES:
        if mistake.exercise != exercise:
            exercise = mistake.exercise
            print(f"{exercise}:")
        left = textwrap.wrap(mistake.wrong_answer, 36, break_on_hyphens=False)
        right = textwrap.wrap(mistake.hint, 58, break_on_hyphens=False)
        for index in range(max(len(left), len(right))):
            cell = left[index] if index < len(left) else ""
            print(f"  {cell:<38}{right[index] if index < len(right) else ''}".rstrip())


show_lab("01")

# %% [markdown]
# **Discuss**
# - The blast radius follows calls *upstream* (who calls the failed service), request success
#   *downstream* (what the called service needs): the same edges, read in opposite directions. Which one
#   does a circuit breaker in the caller's sidecar change, and which does it leave alone?
# - Istio retries by default: two retries on `connect-failure,refused-stream,unavailable,cancelled,
#   retriable-status-codes` (Istio 1.30 pilot/pkg/networking/core/route/retry/retry.go). With independent
#   failures, what does a retry at every hop do to `a ** (1 + descendants)`, and to the load on a service
#   that is failing because it is overloaded?

# %%
show_lab("02")

# %% [markdown]
# **Discuss**
# - Through the sidecar the app sees its peer as 127.0.0.6; bypassing, as the caller's pod IP. Which
#   rule of ISTIO_OUTPUT makes the sidecar's own connection from 127.0.0.6 over `lo` return instead of
#   being captured again, and what would loop without it?
# - With 9090 excluded (`-d 9090`, the `traffic.sidecar.istio.io/excludeInboundPorts` annotation), a
#   STRICT PeerAuthentication no longer protects 9090. Why not, and where would you enforce it instead?
# - Why does excluding 9090 with `-o` (outbound) change nothing for a port the pod serves?

# %%
show_lab("03")

# %% [markdown]
# **Discuss**
# - nat sees only the first packet of a connection: conntrack remembers the translation for the rest.
#   How many nat traversals does a keep-alive connection carrying 100 requests cost, against 100
#   connections?
# - meshlab's sk_msg short-circuits the two loopback segments inside each pod, not the
#   sidecar-to-sidecar connection. Why can nothing short-circuit that segment across nodes, and why
#   does inbound capture still need PREROUTING's REDIRECT?

# %%
show_lab("04")

# %% [markdown]
# **Discuss**
# - In ambient, ztunnel (one per node) carries L4 and mutual TLS; L7 policy needs a waypoint. Which
#   proxy enforces an AuthorizationPolicy with `paths` for ns0, and what is that proxy's blast radius?
# - A per-node proxy holds the keys of every workload on its node. What does a compromise of that
#   proxy expose, compared with one sidecar's?

# %%
show_lab("05")

# %% [markdown]
# **Discuss**
# - After the NACK, which route does the client use? Its `version_info` names the last version it
#   accepted, its `response_nonce` the response it rejects: what would a control plane get wrong if the
#   client echoed the rejected version instead?
# - gRPC refuses a Cluster of type STATIC that Envoy accepts: gRPC's xDS client takes EDS clusters (and
#   aggregate and LOGICAL_DNS, gRFC A37), not static addresses. What must a control plane know about
#   its client before it sends the same resources to Envoy and to gRPC?

# %%
show_lab("06")

# %% [markdown]
# **Discuss**
# - Every change restarts the quiet period (`PILOT_DEBOUNCE_AFTER`, 100 ms by default); only
#   `PILOT_DEBOUNCE_MAX` (10 s) ends a batch while changes keep coming. With a change every 50 ms, when
#   is the first push?
# - With `PILOT_PUSH_THROTTLE` at 0, istiod runs min(15 + 5 x GOMAXPROCS, 100) pushes at once (Istio
#   1.21 and later; 25 on 2 cores). Once every core is busy, what does a higher throttle buy, and what
#   does it cost each push?

# %%
show_lab("08")

# %% [markdown]
# **Discuss**
# - Two rules match `GET /catalog` with `x-canary: always`. Which wins? The Gateway API's order is an
#   Exact path, then the longest PathPrefix, then a method match, then the most header matches, then the
#   most query matches (Gateway API v1.6.1 apis/v1/httproute_types.go); RegularExpression's place is
#   left to the implementation.
# - A route in namespace shop names the Gateway infra/shop as parent. What must the Gateway's listener
#   allow (`allowedRoutes`), and which condition and reason does the route's status carry when it does
#   not (`Accepted` False, `NotAllowedByListeners`)?
# - A 90/10 split by weight: is each request or each connection assigned a backend?

# %%
show_lab("09")

# %% [markdown]
# **Discuss**
# - `shared/*` or each of shared's services by name: which one still works tomorrow, when the platform
#   team adds shared/quota, and what does each cost in clusters sent to checkout's proxy?
# - Under ALLOW_ANY a call to a host the proxy was not told about goes to PassthroughCluster; under
#   REGISTRY_ONLY to BlackHoleCluster. Which one turns a Sidecar that is too narrow into an outage, and
#   which one into a silent bypass of the mesh's policy?
# - Lazy loading learns from the global sidecar's access log. What does the first call to a new
#   dependency cost, and what is learned from a call by IP address?

# %%
show_lab("10")

# %% [markdown]
# **Discuss**
# - A plugin's phase places it among Istio's own filters: AUTHN before authentication, AUTHZ after
#   authentication and before authorization, STATS after authorization and before stats (istio.io/api
#   v1.30.8 extensions/v1alpha1/wasm.proto, PluginPhase); `priority` only orders plugins within a phase.
#   The lab wants the debug header refused before any authentication filter sees it: what would already
#   have run at AUTHZ?
# - When pilot-agent cannot fetch the module, it stands in an RBAC filter: allow-all with FAIL_OPEN,
#   deny-all with FAIL_CLOSE (Istio pkg/wasm/convert.go). Which one does a security filter need, and
#   what does the other do to every request while the registry is down?

# %%
show_lab("11")

# %% [markdown]
# **Discuss**
# - An incomplete frame means "wait", a bad magic means "close": why must a codec never buffer a frame
#   that can never become valid, and what does a client sending garbage cost a proxy that does?
# - The proxy relays pipelined requests to two backends. Which field lets it match replies to requests
#   on one connection, and what would a protocol without one force the proxy to do?

# %%
show_lab("12")

# %% [markdown]
# **Discuss**
# - Primary-remote: while the primary's istiod is down, what keeps working in the remote cluster
#   (proxies keep their last configuration) and what stops (injection, whose webhook fails closed;
#   certificate renewal, 24 h)?
# - Envoy overprovisions by 1.4 (`overprovisioning_factor` 140, Envoy's endpoint.proto): below what
#   share of healthy endpoints does priority 0 start to spill to priority 1, and how much spills with
#   1 of 4 healthy?
# - On multiple networks a pod reaches another network only through its east-west gateway, by SNI with
#   mutual TLS passed through. What does that mean for a pod without a sidecar?

# %%
show_lab("13")

# %% [markdown]
# **Discuss**
# - Why is `unix:uid:0` alone a poor selector where every container's app runs as root, and which
#   selectors tell the server's app from its sidecar (uid 1337) and from a copy in another namespace?
# - The agent identifies a caller of the Workload API by its connection's process, not by what it asks
#   for. What does the intruder get when it asks for the server's SVID?
# - An allow-list of IP addresses against one of SPIFFE IDs: what happens to each when a pod is
#   rescheduled?

# %%
show_lab("14")

# %% [markdown]
# **Discuss**
# - Istio evaluates CUSTOM, then DENY, then ALLOW (istio.io/api security/v1beta1 AuthorizationPolicy).
#   Why does a DENY on `/orders/debug/*` hold against any ALLOW, while a `notPaths` has to be repeated in
#   every ALLOW rule?
# - A rule without `from` admits a plaintext caller, which has no namespace; what does a STRICT
#   PeerAuthentication change, and why is `notNamespaces` no substitute for `namespaces`?
# - RBAC needs a role per (team, clearance): 12 here, and it still cannot say "writes in office hours".
#   How many NGAC associations does the lab's NGAC answer need, and what grows when a team is added?

# %% [markdown]
# ## 5 · On the projector: what the kind sections print
#
# Chapters 02, 04 and 06 end with a section on a real cluster (the kind stage: Docker, kind, kubectl,
# istioctl 1.30.3). Most rooms have no Docker; show these instead. They come from what the repository
# records in `tests/data/kind/` (its README says how each file was made); no file there was recorded
# from a live cluster, since no Docker runs where the book is built, so each is the real program's
# output where one runs without a cluster, and a format where none does.

# %%
from meshlab.kind import observe
from meshlab.kind import stage as kind_stage

KIND_DATA = ROOT / "tests" / "data" / "kind"
for chapter, compares in kind_stage.CHAPTERS.items():
    print(fit(f"chapter {chapter}: {compares}"))

# %% [markdown]
# **Chapter 02** compares a sidecar pod's rules, read three ways, with `meshlab intercept`. This is the
# nat table that Istio's own `pilot-agent istio-iptables` (1.30.3's, built from its module) left in a
# network namespace, as its log prints it ("Final iptables state (IPv4):", istio-init's log since
# Istio 1.25), run with the istio-init arguments that `istioctl kube-inject` gives an httpbin pod.
# On a cluster, the section prints that the log, the debug container and the kernel all agree with
# meshlab's rendering, and that the request from curl to httpbin carried an `X-Forwarded-Client-Cert`
# naming curl's SPIFFE ID (it crossed both sidecars over mutual TLS).

# %%
state = observe.iptables_state_from_init_log((KIND_DATA / "istio-init-1.25.log").read_text())
print(fit("\n".join(line for line in state.splitlines() if not line.startswith("#"))))

# %% [markdown]
# **Chapter 04** compares an ambient pod's in-pod rules with the chapter's account of them. This is
# istio-cni's own expected output for a pod (Istio's test golden `cni/pkg/iptables/testdata/
# default.golden`), loaded into a network namespace and read back with `iptables-save`: marks, the
# ztunnel ports 15001, 15006 and 15008, and DNS to 15053.

# %%
ambient = (KIND_DATA / "ambient-pod-iptables-save.txt").read_text()
print(fit("\n".join(line for line in ambient.splitlines() if not line.startswith("#"))))

# %% [markdown]
# **Chapter 06** applies 10 ServiceEntries at once, then 5 spaced beyond `PILOT_DEBOUNCE_AFTER`, and
# counts istiod's debounced pushes (`pilot_debounce_time_count`, one per push released). The repository
# records no real count; the section prints istiod's count beside the simulator's prediction, which for
# istiod's default settings is:

# %%
from meshlab.xds.pushcount import predict_pushes

burst = predict_pushes(kind_stage.DEBOUNCE, [0.0] * 10)
spaced = predict_pushes(kind_stage.DEBOUNCE, [i * 3 * kind_stage.DEBOUNCE.debounce_after_ms for i in range(5)])
print(f"10 ServiceEntries at once: {burst} debounced push; 5 spaced {3 * kind_stage.DEBOUNCE.debounce_after_ms:g} ms apart: {spaced}")
print(f"(PILOT_DEBOUNCE_AFTER={kind_stage.DEBOUNCE.debounce_after_ms:g} ms, PILOT_DEBOUNCE_MAX={kind_stage.DEBOUNCE.debounce_max_ms:g} ms)")

# %% [markdown]
# A count that differs by one or two is worth a discussion rather than alarm: istiod also pushes for
# its own reasons (a proxy connecting, an endpoint changing), which is why the section waits for a
# quiet cluster before counting.
#
# ## What to remember
#
# - Collect `meshlab doctor --json` from every student beforehand; `meshlab classroom preflight` says
#   who runs which live section on the model stage.
# - The half day needs nothing but the model stage; the full day wants the live stage, and root for
#   chapter 03's eBPF.
# - A student's hint names the mistake: the tables above say which wrong answer prints it.
