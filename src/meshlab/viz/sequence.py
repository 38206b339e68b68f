"""Sequence diagrams: who sent what to whom, in order, as a protocol is taught.

An ADS stream is a conversation, and a conversation reads best top to bottom: one lifeline per
participant, one arrow per message. ``draw_sequence`` draws any such exchange with matplotlib (so its
text extents can be measured like every other figure), and ``ads_messages`` turns the records of
meshlab's xDS control plane (``ControlPlane.exchanges``: direction, kind, type, version, nonce)
into messages, so the chapter shows the exchange that really happened, colour-coded: a response in
the control plane's colour, an ACK in the wire's, a NACK in the failure colour.

    Message        one arrow: sender, receiver, label, role (a colour of meshlab.viz.style)
    draw_sequence  lifelines and arrows, one row per message
    ads_messages   a control plane's recorded exchange as messages between "client" and "control plane"
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt

from meshlab.viz.style import ROLE_COLOURS

ROW_INCHES = 0.34
FONT_PT = 9.5


@dataclass(frozen=True)
class Message:
    sender: str
    receiver: str
    label: str
    role: str = "wire"


def draw_sequence(participants: Sequence[str], messages: Sequence[Message], title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Lifelines for ``participants`` (left to right) and one labelled arrow per message, top to bottom."""
    unknown = sorted({end for m in messages for end in (m.sender, m.receiver)} - set(participants))
    if unknown:
        raise ValueError(f"messages name participants {unknown} not in {list(participants)}")
    roles = sorted({m.role for m in messages} - set(ROLE_COLOURS))
    if roles:
        raise ValueError(f"unknown roles {roles}; roles are {', '.join(ROLE_COLOURS)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.9 + ROW_INCHES * (len(messages) + 1)))
    x = {name: index for index, name in enumerate(participants)}
    bottom = len(messages) + 0.5
    for name, position in x.items():
        ax.plot([position, position], [-0.3, bottom], color="#999999", lw=1)
        ax.text(position, -0.55, name, ha="center", va="bottom", fontsize=FONT_PT + 1, fontweight="bold")
    for row, message in enumerate(messages, start=1):
        start, end = x[message.sender], x[message.receiver]
        colour = ROLE_COLOURS[message.role]
        ax.annotate("", xy=(end, row), xytext=(start, row), arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.4})
        ax.text((start + end) / 2, row - 0.12, message.label, ha="center", va="bottom", fontsize=FONT_PT, color=colour)
    ax.set_xlim(-0.35, len(participants) - 0.65)
    ax.set_ylim(bottom, -1.0)
    ax.axis("off")
    ax.set_title(title)
    return ax


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
