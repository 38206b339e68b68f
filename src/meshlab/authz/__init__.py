"""Istio's AuthorizationPolicy as it is today (security.istio.io/v1), evaluated without Envoy.

One policy kind replaced Istio's first RBAC API (ServiceRole, ServiceRoleBinding, ClusterRbacConfig,
deprecated in Istio 1.4 and removed in 1.6: istio.io blog, "Migrate pre-Istio 1.4 Alpha security
policy to the current APIs", 2021). A policy selects workloads, names an action (ALLOW, DENY,
AUDIT, CUSTOM) and lists rules over the request's attributes; the decision is computed in layers,
CUSTOM, DENY, ALLOW. The matching follows Istio 1.30.3's own translation to Envoy RBAC.

    request   Workload (the destination) and Request (its attributes)
    match     one value against one attribute: the string forms, SPIFFE-ID regexes, JWT claims, CIDRs
    policy    AuthorizationPolicy from a manifest, validated as istiod does; load() reads YAML
    evaluate  the layered decision, TCP's HTTP-only rule, CUSTOM's ext_authz providers; Decision
"""

from meshlab.authz.evaluate import Decision, ExtensionProvider, Provider, evaluate
from meshlab.authz.match import string_matches
from meshlab.authz.policy import ROOT_NAMESPACE, AuthorizationPolicy, PolicyInvalid, load
from meshlab.authz.request import Request, Workload

__all__ = ["ROOT_NAMESPACE", "AuthorizationPolicy", "Decision", "ExtensionProvider", "PolicyInvalid", "Provider", "Request", "Workload", "evaluate", "load",
           "string_matches"]
