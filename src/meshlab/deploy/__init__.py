"""Where the proxy lives: four deployment models computed for a cluster topology.

    topology      the cluster (nodes, namespaces, service accounts, pods, calls), from JSON or a seed
    models        proxies, cost, identities, failure domains and request paths per model
    availability  proxies failing and restarting over time, and the requests that fail (simpy)
"""

from meshlab.deploy.availability import simulate
from meshlab.deploy.models import MODELS, compare, evaluate, proxies_for
from meshlab.deploy.topology import Topology, TopologyError, generate_topology, load_topology, topology_from_json

__all__ = ["MODELS", "Topology", "TopologyError", "compare", "evaluate", "generate_topology", "load_topology", "proxies_for", "simulate", "topology_from_json"]
