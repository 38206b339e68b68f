"""SPIRE's server side: node attestation first, then SVIDs only for what a node may run.

SPIRE splits identity in two. The server holds the trust domain's signing keys and the
registration entries; it never sees workloads. An agent on every node proves *the node* to the
server (node attestation), receives an agent SVID, and from then on may ask for SVIDs of the
entries parented to it and nothing else. A compromised node therefore yields only the identities
registered for that node. meshlab keeps that split in one process: ``SpireServer`` is the server,
``meshlab.identity.agent.Agent`` the agent, and the agent must attest before it can mint.

Two node attestors, as SPIRE's:

- ``join_token``: the operator creates a one-time token; the agent presents it; the agent's ID is
  ``spiffe://<td>/spire/agent/join_token/<token>``. A token works once and expires.
- ``k8s_psat`` (modelled): the agent presents its projected service account token; the server
  checks it as the Kubernetes TokenReview API would (signature by the cluster's key, audience,
  expiry), checks the service account is allowed, and that the pod runs on the named node; the ID is
  ``spiffe://<td>/spire/agent/k8s_psat/<cluster>/<node uid>``.

    SpireServer       authority + entries; create_join_token, attest_join_token, attest_psat,
                      entries_for, mint_x509_svid, mint_jwt_svid
    KubernetesCluster the model of a cluster's service account token issuer and pod list (for PSAT)
    NodeAttestationError  why a node was refused
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import jwt
from cryptography import x509

from meshlab.identity.authority import TrustDomainAuthority, new_key, utcnow
from meshlab.identity.entries import RegistrationEntry
from meshlab.identity.spiffeid import SpiffeId, TrustDomain

AGENT_SVID_TTL = dt.timedelta(hours=1)
JWT_SVID_MAX_TTL_S = 300
PSAT_AUDIENCE = "spire-server"


class NodeAttestationError(PermissionError):
    """A node (agent) could not prove itself; the message says which check failed."""


@dataclass
class KubernetesCluster:
    """What PSAT attestation needs from a cluster: its token-signing key (the TokenReview API's
    answer is "signed by me, for this audience, not expired") and its pods, with their nodes."""

    name: str
    pods: dict[tuple[str, str], dict] = field(default_factory=dict)  # (namespace, pod) -> {"node", "service_account"}
    _key: object = field(default_factory=new_key, repr=False)

    def node_uid(self, node: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"meshlab:{self.name}:node:{node}"))

    def projected_token(self, namespace: str, pod: str, audience: str = PSAT_AUDIENCE, ttl: dt.timedelta = dt.timedelta(minutes=10)) -> str:
        """The token the kubelet projects into ``pod``'s volume (a JWT the cluster signs)."""
        record = self.pods[(namespace, pod)]
        now = utcnow()
        claims = {"iss": f"https://kubernetes.default.svc/{self.name}", "aud": [audience], "exp": int((now + ttl).timestamp()),
                  "sub": f"system:serviceaccount:{namespace}:{record['service_account']}",
                  "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": record["service_account"]},
                                    "pod": {"name": pod}, "node": {"name": record["node"], "uid": self.node_uid(record["node"])}}}
        return jwt.encode(claims, self._key, algorithm="ES256")

    def token_review(self, token: str, audience: str) -> dict:
        """Authenticated claims, or NodeAttestationError (a TokenReview that says "not authenticated")."""
        try:
            return jwt.decode(token, self._key.public_key(), algorithms=["ES256"], audience=audience)
        except jwt.InvalidTokenError as error:
            raise NodeAttestationError(f"the cluster did not authenticate the token: {error}") from None


class SpireServer:
    def __init__(self, trust_domain: TrustDomain, now: dt.datetime | None = None) -> None:
        self.trust_domain = trust_domain
        self.authority = TrustDomainAuthority(trust_domain, now=now)
        self.entries: list[RegistrationEntry] = []
        self._join_tokens: dict[str, dt.datetime] = {}
        self.agents: dict[SpiffeId, list[str]] = {}  # attested agent -> its node selectors

    # -- node attestation -----------------------------------------------------------------------
    def create_join_token(self, ttl: dt.timedelta = dt.timedelta(minutes=10)) -> str:
        token = str(uuid.uuid4())  # random (os.urandom), as SPIRE's tokens are UUIDs
        self._join_tokens[token] = utcnow() + ttl
        return token

    def attest_join_token(self, token: str, public_key) -> x509.Certificate:
        """The agent SVID for a node presenting a valid join token (and the key it generated)."""
        expires = self._join_tokens.pop(token, None)  # one use, whatever the outcome
        if expires is None:
            raise NodeAttestationError("join token is unknown or was already used")
        if expires <= utcnow():
            raise NodeAttestationError("join token has expired")
        return self._admit(SpiffeId(self.trust_domain, f"/spire/agent/join_token/{token}"), [f"join_token:{token}"], public_key)

    def attest_psat(self, token: str, cluster: KubernetesCluster, allowed_service_accounts: set[str], public_key) -> x509.Certificate:
        claims = cluster.token_review(token, PSAT_AUDIENCE)
        k8s = claims["kubernetes.io"]
        namespace, account, pod = k8s["namespace"], k8s["serviceaccount"]["name"], k8s["pod"]["name"]
        if f"{namespace}:{account}" not in allowed_service_accounts:
            raise NodeAttestationError(f"service account {namespace}:{account} is not allowed to attest nodes")
        record = cluster.pods.get((namespace, pod))
        if record is None or record["node"] != k8s["node"]["name"]:
            raise NodeAttestationError(f"pod {namespace}/{pod} does not run on node {k8s['node']['name']}")
        node_uid = k8s["node"]["uid"]
        selectors = [f"k8s_psat:cluster:{cluster.name}", f"k8s_psat:agent_ns:{namespace}", f"k8s_psat:agent_sa:{account}",
                     f"k8s_psat:agent_pod_name:{pod}", f"k8s_psat:agent_node_name:{record['node']}"]
        return self._admit(SpiffeId(self.trust_domain, f"/spire/agent/k8s_psat/{cluster.name}/{node_uid}"), selectors, public_key)

    def _admit(self, agent_id: SpiffeId, selectors: list[str], public_key) -> x509.Certificate:
        self.agents[agent_id] = selectors
        return self.authority.certify(agent_id, public_key, AGENT_SVID_TTL)

    # -- serving attested agents ----------------------------------------------------------------
    def _check_agent(self, agent_id: SpiffeId) -> None:
        if agent_id not in self.agents:
            raise NodeAttestationError(f"{agent_id} has not attested; an agent attests its node before it gets any SVID")

    def entries_for(self, agent_id: SpiffeId) -> list[RegistrationEntry]:
        """The entries this agent may issue: those parented to it (what SPIRE syncs to an agent)."""
        self._check_agent(agent_id)
        return [entry for entry in self.entries if entry.parent_id == agent_id]

    def _check_entry(self, agent_id: SpiffeId, entry: RegistrationEntry) -> None:
        self._check_agent(agent_id)
        if entry not in self.entries or entry.parent_id != agent_id:
            raise NodeAttestationError(f"{agent_id} may not mint {entry.spiffe_id}: the entry is not parented to it")

    def mint_x509_svid(self, agent_id: SpiffeId, entry: RegistrationEntry, public_key, now: dt.datetime | None = None) -> x509.Certificate:
        """The entry's X509-SVID certificate for a key the agent generated (a CSR, in SPIRE)."""
        self._check_entry(agent_id, entry)
        return self.authority.certify(entry.spiffe_id, public_key, dt.timedelta(seconds=entry.ttl_s), now)

    def mint_jwt_svid(self, agent_id: SpiffeId, entry: RegistrationEntry, audience: list[str]) -> str:
        """A JWT-SVID for the entry; JWT-SVIDs live at most 5 minutes (a bearer token cannot be
        bound to its holder, so it should not outlive its use)."""
        self._check_entry(agent_id, entry)
        return self.authority.sign_jwt_svid(entry.spiffe_id, audience, dt.timedelta(seconds=min(entry.ttl_s, JWT_SVID_MAX_TTL_S)))
