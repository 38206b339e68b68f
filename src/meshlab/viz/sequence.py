"""Sequence diagrams' data: who sent what to whom, in order, as a protocol is taught.

An ADS stream is a conversation, and a conversation reads best top to bottom (``draw_sequence`` in
meshlab.viz.figures draws it). ``ads_messages`` turns the records of meshlab's xDS control plane
(``ControlPlane.exchanges``: direction, kind, type, version, nonce) into messages, so a chapter shows
the exchange that really happened, colour-coded: a response in the control plane's colour, an ACK in
the wire's, a NACK in the failure colour, a stale request in grey.

    Message        one arrow: sender, receiver, label, role (a colour of meshlab.viz.style)
    ads_messages   a control plane's recorded exchange as messages between the client and the control plane
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    sender: str
    receiver: str
    label: str
    role: str = "wire"


def ads_messages(exchanges: Iterable[dict], client: str = "gRPC xDS client", server: str = "control plane") -> list[Message]:
    """Recorded ADS requests and responses as messages; a request repeats the nonce it answers."""
    messages = []
    for record in exchanges:
        kind, kind_type = record["kind"], record["type"]
        if record["direction"] == "response":
            label = f"{kind_type} response: version {record['version']}, nonce {record['nonce']}"
            messages.append(Message(server, client, label, "control-plane"))
            continue
        if kind == "subscribe":
            label, role = f"subscribe {kind_type} {', '.join(record['resources'])}", "app"
        else:
            label = f"{kind} {kind_type}: version {record['version'] or '(none)'}, nonce {record['nonce']}"
            role = "failure" if kind.startswith("NACK") else "netfilter" if kind.startswith("stale") else "wire"
        messages.append(Message(client, server, label, role))
    return messages
