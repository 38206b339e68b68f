# %% [markdown]
# # 00 · How to use this book
#
# meshlab teaches how service meshes work *inside*: how a sidecar gets your traffic without you
# asking, how a control plane decides when to push configuration, how a workload proves who it is.
# Every mechanism is implemented once, as plain Python in the `meshlab` package, and then shown to
# you on up to four **stages**.
#
# **After this chapter you can**
# - name the four stages and say what each needs from your machine;
# - read `meshlab doctor`'s report and apply the fix it gives;
# - work through a lab: write an answer, run its check, read the hint;
# - put a chapter, a lab or your machine back to a clean state.

# %% [markdown]
# ## The map
#
# Fifteen chapters follow the article "Beyond Istio OSS" (2022). Blue ones are written; grey ones are
# planned. An arrow points from a chapter to one that builds on it. Every chapter opens with a diagram like
# this one, drawn by `meshlab.viz` from a small spec, so that later cells can light up what really happened.

# %%
from meshlab.viz.architectures import READING_PATHS, book_map, reading_path

book_map()

# %% [markdown]
# **Reading paths.** You need not read in order. Each path below takes seven to eight hours: count about an hour
# per chapter (reading at a technical pace and running its cells) and forty minutes per lab.
#
# | path | chapters | for whom |
# |---|---|---|
# | data path | 01, 02, 03, 04, 07 | how a request is caught and carried: iptables, eBPF, sidecar vs ambient, Envoy and its agent |
# | control plane | 01, 05, 06, 11 | what istiod sends, when, and how it scales; protocols beyond HTTP |
# | security | 01, 02, 13, 14 | who a workload is (SPIFFE, SPIRE) and what it may do (RBAC, NGAC) |
#
# Pick one to see it on the map:

# %% tags=["nbval-ignore-output"]
import ipywidgets as widgets
from IPython.display import display


def show_path(path):
    display(reading_path(path))


assert [chapters[0] for chapters, _ in READING_PATHS.values()] == ["01", "01", "01"]
widgets.interact(show_path, path=widgets.Dropdown(options=list(READING_PATHS), description="path"));

# %% [markdown]
# **Optional sections.** Skip these on a first reading; nothing later depends on them.
#
# | chapter | optional | why you might skip it |
# |---|---|---|
# | 01 | §4 where the proxies came from, §5 seven meshes as data, §6 who should adopt Istio | history, landscape and adoption |
# | 02 | §5 what the extra hops cost; §6 injected by the API server; §7 on a real cluster | measurement; needs the upstream stage (Go) and root; needs Docker and kind |
# | 04 | §5 on a real cluster | needs Docker and kind |
# | 05 | §6 the same client, the real istiod, in a pod | needs the upstream stage (Go) and root |
# | 06 | §6 on a real cluster; §7 the real istiod, without a cluster | needs Docker and kind; needs the upstream stage (Go) |
# | 07 | §3 could pilot-agent be merged into Envoy?; §5 what telemetry costs | design discussion; measurement |
# | 08 | §2 Istio's Gateway and VirtualService; §5 the same YAML through Envoy Gateway | history; needs the upstream stage (Go) |
# | 10 | §1 a module and its host (the ABI's exports and imports) | for those who will write a host |
# | 11 | §2 frames, byte by byte | for those who will write a codec |
# | 12 | §4 a management plane over many meshes; §6 several trust domains | for platform teams; federation |
# | 13 | §8 the real SPIRE beside meshlab's agent | needs the upstream stage (Go) |
#
# Sections marked **upstream** run the projects' own programs, built from their Go modules; sections
# marked **kind** need a real cluster. `meshlab doctor` (below) says which your machine can run.

# %%
from meshlab import doctor
from meshlab.check import CheckFailed, lab01
from meshlab.microservices import call_graph_stats, grow_call_graph
from meshlab.viz import slider, use_book_style
from meshlab.viz.text import fit, say

use_book_style()

# %% [markdown]
# ## The four stages
#
# | stage | what runs | needs | used for |
# |---|---|---|---|
# | **model** | the mechanism on a simulated clock and network (simpy, networkx) | Python only; any OS | every chapter; what the tests pin |
# | **live** | the same code against your own Linux kernel: pods are network namespaces, interception is real iptables or eBPF, sidecars are real processes | Linux, iproute2, iptables; root, or unprivileged user namespaces (eBPF: root) | the live sections of chapters 02 to 04, 05 §6 and 13 (chapters 05-06, 11 and 13-14 also run parts on loopback, anywhere) |
# | **upstream** | the projects' own programs (Istio's istiod, pilot-agent and istioctl, a Kubernetes API server with etcd, kubectl and its EndpointSlice controller, SPIRE's server and agent, Envoy Gateway's egctl, ...), built from their published Go modules at pinned versions | Go (1.26.6 or later for egctl) and the Go module proxy; gcc for SPIRE | the upstream sections of chapters 02, 05-10, 12 and 13, which compare meshlab with the real thing |
# | **kind** | real Kubernetes and real Istio in Docker, with meshlab's predictions checked against them | Docker, kind, kubectl, istioctl, >= 4 CPUs and 8 GB | readers who want the cluster itself |
#
# The live lab has two optional parts: **ebpf** (chapter 03 needs clang, libbpf and bpftool) and a
# **browser** (only the book's own end-to-end test uses it). A cell never hides which stage it runs
# on: headings say *Model*, *Live* or *kind*. On macOS or Windows you get the model stage, which
# every chapter has; the live stage needs a Linux kernel (a Linux VM works).
#
# Models are seeded: the same seed gives the same numbers on every machine, which is how the book's
# printed outputs are checked on every test run.

# %%
first = call_graph_stats(grow_call_graph(40, seed=3))
again = call_graph_stats(grow_call_graph(40, seed=3))
print("same seed, same model:", first == again)
say("figures", first)

# %% [markdown]
# ## What `meshlab doctor` says about your machine
#
# Run `meshlab doctor` in a terminal (or `.venv/bin/meshlab doctor`), or the cell below. For every
# stage it says *available* or not, why, and the exact fix. `meshlab doctor --json` prints the same as
# `{"stages": {"model": {"available": ..., "reason": ..., "fix": ...}, ...}}` for scripts. Its probes are
# real: the live stage is "available" only if a throw-away network namespace could just be created.
#
# The output differs from machine to machine, so this cell's text is not pinned, and the book is stored
# without it (the cell carries the tag `machine-specific`): run it to see your machine. It only insists that
# the model stage works, since you are running it, and that every stage not available comes with a fix.

# %% tags=["nbval-ignore-output", "machine-specific"]
reports = doctor.diagnose()
print(fit(doctor.render_text(reports)))
assert reports["model"].available, reports["model"].reason
assert list(reports) == list(doctor.STAGES) and all(report.available or report.fix for report in reports.values())

# %% [markdown]
# ## Sliders and figures
#
# Most chapters have controls: move a slider and the figure or table below it is recomputed.
# Controls change only the model's inputs; the text cells around them keep the book's figures.

# %% tags=["nbval-ignore-output"]
def services_and_paths(services):
    stats = call_graph_stats(grow_call_graph(services, seed=3))
    print(f"{stats.services} services: {stats.dependencies} dependencies, {stats.call_paths} call paths")


widgets.interact(services_and_paths, services=slider("services", 20, 2, 200));
twenty = call_graph_stats(grow_call_graph(20, seed=3))
assert (twenty.services, twenty.dependencies, twenty.call_paths) == (20, 37, 93)  # the figures printed above

# %% [markdown]
# ## Labs and checks
#
# Exercises live in `labs/`. In the copy you work on, each answer is a stub:
#
# ```python
# def blast_radius(graph, service):
#     # YOUR CODE HERE
#     raise NotImplementedError()
# ```
#
# Replace the stub with your code and run the check cell under it. A check compares your answer with
# meshlab's own on several inputs; when they differ it tells you *which* usual mistake explains your
# answer. Here is what a check says to an answer that follows calls in the wrong direction:

# %%
import networkx as nx


def downstream_instead(graph, service):
    return set(nx.descendants(graph, service))


try:
    lab01.check_blast_radius(downstream_instead)
except CheckFailed as hint:
    print(fit(str(hint)))

# %% [markdown]
# Instructors: the notebooks in `labs/` carry the solutions between `### BEGIN SOLUTION` and
# `### END SOLUTION` (nbgrader's markers). `meshlab labs release --out student/` writes the student
# copies: each solution block becomes `# YOUR CODE HERE` plus `raise NotImplementedError()`, stored
# outputs are cleared, nothing else changes. The test suite runs every check on the solutions (they
# must pass) and on the student copies (they must fail).
#
# ## Putting things back
#
# - **A chapter**: *Kernel → Restart Kernel and Run All Cells*. To get the stored version of a
#   notebook back, `git checkout notebooks/<chapter>.ipynb`.
# - **A lab**: release a fresh student copy with `meshlab labs release --out <folder>`; your old copy
#   is untouched unless you write over it.
# - **The live lab**: every chapter's live section stops its lab in its last cell. If a kernel died
#   half-way, `meshlab lab cleanup --prefix <prefix>` removes everything carrying that prefix (namespaces,
#   the processes inside them, the lab's state in `/run/meshlab/`); `meshlab lab status --prefix ml`
#   shows a lab started from the command line (`meshlab lab up`), `meshlab lab down` stops it.
# - **The whole book**: `make test` re-runs every chapter and compares it with its stored output.
#   To run one chapter's tests: `.venv/bin/python -m pytest --nbval notebooks/01-from-kubernetes-to-istio.ipynb tests/test_microservices.py`.
#
# ## Stage of this chapter
#
# Everything above ran on the **model** stage, plus `meshlab doctor`'s real probes of your machine.
#
# ## What to remember
#
# - Every mechanism is one piece of Python in `src/meshlab`, shown on up to four stages: model (anywhere),
#   live (your kernel), upstream (the projects' own programs) and kind (a real cluster).
# - `meshlab doctor` says which stages your machine runs and, for each that it cannot, the exact fix.
# - Stored outputs are what `make test` checks; a cell whose numbers vary asserts what must hold instead.
#
# ## Check yourself
#
# 1. Your laptop has no Docker but runs Linux with root. Which stages can you use?
#
#    <details><summary>Answer</summary>
#
#    Model, live (network namespaces, iptables, eBPF with clang and bpftool) and, with Go, upstream.
#    Only kind needs Docker; `meshlab doctor` confirms each with a real probe.
#
#    </details>
#
# 2. A check in a lab fails with a hint. What does the hint name?
#
#    <details><summary>Answer</summary>
#
#    The usual mistake it recognised, e.g. a blast radius that counts downstream services instead of
#    callers, and what the check expected.
#
#    </details>
#
# 3. Why can a live cell be tagged `nbval-ignore-output` without weakening the tests?
#
#    <details><summary>Answer</summary>
#
#    Because it must assert what has to hold (a test enforces that): the numbers vary, the facts do not.
#
#    </details>
