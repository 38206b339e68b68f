"""The service-mesh landscape as data with sources: meshes and the proxies they grew from.

    meshes   seven meshes: proxy, ingress, governance, licence, milestones, status in 2026
    proxies  five eras of proxies, from configuration files to the cloud-native era
"""

from meshlab.landscape.meshes import MESHES, RELATED_PROJECTS, Mesh, Milestone, RelatedProject, mesh_table
from meshlab.landscape.proxies import ERAS, Era, Proxy

__all__ = ["ERAS", "MESHES", "RELATED_PROJECTS", "Era", "Mesh", "Milestone", "Proxy", "RelatedProject", "mesh_table"]
