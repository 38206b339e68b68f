"""Logging a room in: a password per account, generated for this class and handed out on paper.

JupyterHub's ``shared-password`` authenticator lets anyone who knows the room's password log in as any
other student (classroom.md), and first-use passwords let whoever comes first claim a name. Here each
account gets its own random password when the class starts; the instructor prints the list and hands
each student theirs. The hub keeps only scrypt hashes (in a file only root reads); the passwords are
valid until ``meshlab classroom down``.

    new_password             a password a student can type (10 characters from an unambiguous alphabet)
    hash_password / verify   scrypt, with a salt per password; comparison in constant time
    write_table              the hashes file the hub reads
    ClassroomAuthenticator   JupyterHub's Authenticator: the name must be in the table and the password match
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from jupyterhub.auth import Authenticator
from traitlets import Unicode

ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper
LENGTH = 10  # 31^10, about 2^49: with the hub's login throttling, far beyond guessing in a class's time
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # RFC 7914's interactive-login parameters


def new_password() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def hash_password(password: str) -> dict:
    salt = secrets.token_bytes(16)
    return {"salt": salt.hex(), "scrypt": hashlib.scrypt(password.encode(), salt=salt, **SCRYPT).hex()}


def verify(password: str, stored: dict) -> bool:
    computed = hashlib.scrypt(password.encode(), salt=bytes.fromhex(stored["salt"]), **SCRYPT)
    return hmac.compare_digest(computed.hex(), stored["scrypt"])


def write_table(path: Path, passwords: dict[str, str]) -> None:
    """The hashes of ``passwords`` (account -> password) in a file only its owner (root) can read."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as table:
        json.dump({name: hash_password(password) for name, password in passwords.items()}, table, indent=1)


class ClassroomAuthenticator(Authenticator):
    """Accepts an account from the class's table with its own password; nobody else."""

    table_file = Unicode(config=True, help="the JSON file of scrypt hashes written by meshlab classroom up")

    async def authenticate(self, handler, data):
        name, password = (data or {}).get("username", ""), (data or {}).get("password", "")
        try:
            table = json.loads(Path(self.table_file).read_text())
        except (OSError, ValueError) as error:
            self.log.error("classroom password table %s unreadable: %s", self.table_file, error)
            return None
        stored = table.get(name)
        if stored is None or not verify(password, stored):
            self.log.warning("classroom login refused for %r", name)
            return None
        return name
