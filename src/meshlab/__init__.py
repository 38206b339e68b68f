"""meshlab: how service meshes work inside, as a textbook with a live lab.

Every mechanism is implemented once, here, and shown on up to three stages:
the *model* (a simulated clock and network, runs anywhere), the *live* lab
(network namespaces and the reader's own kernel) and *kind* (real Kubernetes
and Istio, for readers with Docker).

Subpackages and modules, one line each:
    doctor         which stages this machine can run, why not, and the fix
    microservices  call-graph growth and the request path (chapter 01)
    landscape      meshes and proxies as sourced data (chapter 01)
    viz            the book's figure style, shared figures and widget helpers
    check          answer checks for labs/, with specific hints
    labs           nbgrader-style lab notebooks and their student copies
    book           starts JupyterLab on the textbook (``make lab``)
    cli            the ``meshlab`` command
"""

__version__ = "0.1.0"
