"""The kind stage: real Kubernetes (kind) and real Istio, driven from the chapters, with meshlab's
predictions checked against what the cluster really does. It needs Docker, kind, kubectl and
istioctl on the reader's machine (``meshlab doctor --stage kind`` says what is missing and how to
get it); every command goes through one Runner, so without them a chapter shows the exact commands.

    versions     every pinned version, with its source (Istio 1.30.3, kind v0.33.0, Kubernetes 1.35.8)
    runner       Runner (run or dry-run a command for a named step), KindError (step, problem, fix)
    config       the kind Cluster configuration (1 control plane + 2 workers, NodePort mappings)
    cluster      KindCluster: create or reuse, wait until ready, apply, run on a node, delete
    preflight    what meshlab doctor checks for the kind stage, each problem with its fix
    manifests    namespaces enrolled for sidecar or ambient, sample workloads, ServiceEntries
    istio        istioctl: version check, install a profile with debounce settings
    observe      parsers (istio-init logs, metrics, durations, tables) and fetchers
    experiments  real rules vs meshlab's, real debounce vs the simulator
    stage        the whole sequence a chapter runs: up, compare, down
"""
