"""Sign-in: password hashes for the people using the web UI, tokens for programs using the API.

Passwords are stored as scrypt hashes (`scrypt$N$r$p$salt$hash`, standard library only): slow and
memory-hard on purpose (~50 ms and 16 MiB each at N=2**14, r=8), so a leaked settings file does not
give the passwords away. API tokens are long random strings, so a fast hash is enough: they are
stored as `sha256:<hex>` and a presented token is hashed and compared with every stored hash in
constant time. Plain tokens in the settings are accepted and hashed at start.

Make the values for `ASSISTANT_USERS` and `ASSISTANT_API_TOKENS`:

    python -m assistant.server.auth hash-password alice   # asks for the password; prints alice:scrypt$…
    python -m assistant.server.auth new-token              # prints a new token, and the sha256:… to configure

Example:
    >>> hashed = hash_password("correct horse", n=2**10)  # a small N keeps the example fast
    >>> verify_password("correct horse", hashed), verify_password("wrong", hashed)
    (True, False)
    >>> credentials = Credentials(users={"alice": hashed}, tokens=["s3cret-token"])
    >>> credentials.token_id("s3cret-token") == credentials.token_id("s3cret-token") != None
    True
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import re
import secrets
import sys
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from assistant.settings import Settings

#: scrypt cost: N (CPU and memory, a power of 2), r (block size), p (parallelism); 128*N*r = 16 MiB.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_MAX_SCRYPT_MEMORY = 64 * 2**20
_TOKEN_HASH = re.compile(r"^sha256:([0-9a-f]{64})$")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """`password` as `scrypt$N$r$p$salt$hash`, with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAX_SCRYPT_MEMORY, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("a password hash must look like scrypt$N$r$p$salt$hash; make one with "
                         "`python -m assistant.server.auth hash-password NAME`")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except ValueError as exc:
        raise ValueError(f"a password hash has a malformed number or base64 part ({exc})") from None
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * n * r * p > _MAX_SCRYPT_MEMORY or not salt or not digest:
        raise ValueError(f"a password hash has unusable scrypt parameters N={n}, r={r}, p={p}; make a new one")
    return n, r, p, salt, digest


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches the scrypt hash `encoded` (compared in constant time)."""
    n, r, p, salt, digest = _parse_hash(encoded)
    candidate = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAX_SCRYPT_MEMORY, dklen=len(digest)
    )
    return hmac.compare_digest(candidate, digest)


def hash_token(token: str) -> str:
    """How a token is stored: `sha256:<hex>`. A token is random, so a fast hash is enough."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh API token: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


class Credentials:
    """Who may use the app: users with scrypt password hashes, and API token hashes.

    Example:
        >>> Credentials(users={}, tokens=[]).required
        False
    """

    def __init__(self, *, users: Mapping[str, str], tokens: Iterable[str]) -> None:
        for name, encoded in users.items():
            if not name or ":" in name:
                raise ValueError(f"user name {name!r} must be non-empty and have no ':'")
            try:
                _parse_hash(encoded)
            except ValueError as exc:
                raise ValueError(f"ASSISTANT_USERS: the hash of user {name!r} is not usable: {exc}") from None
        self._users = dict(users)
        self._token_hashes = [self._stored_token_hash(token) for token in tokens]
        # Checked against when the user name is unknown, so that the answer takes as long either way.
        self._decoy = hash_password(secrets.token_urlsafe(16))

    @staticmethod
    def _stored_token_hash(token: str) -> bytes:
        text = token.strip()
        if not text.lower().startswith("sha256:"):
            return hashlib.sha256(text.encode("utf-8")).digest()
        match = _TOKEN_HASH.match(text.lower())
        if match is None:
            raise ValueError("ASSISTANT_API_TOKENS: an entry starting with sha256: must be followed by 64 hex digits")
        return bytes.fromhex(match.group(1))

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Credentials":
        users = {name: secret.get_secret_value() for name, secret in settings.users.items()}
        return cls(users=users, tokens=[secret.get_secret_value() for secret in settings.api_tokens])

    @property
    def required(self) -> bool:
        """Whether anyone must sign in at all (some users or tokens are configured)."""
        return bool(self._users or self._token_hashes)

    @property
    def has_users(self) -> bool:
        return bool(self._users)

    @property
    def has_tokens(self) -> bool:
        return bool(self._token_hashes)

    def verify_user(self, name: str, password: str) -> bool:
        """Whether `name` may sign in with `password`; as slow for an unknown name as for a known one."""
        encoded = self._users.get(name)
        matches = verify_password(password, encoded or self._decoy)
        return matches and encoded is not None

    def token_id(self, presented: str) -> str | None:
        """A short, stable id for a valid token (for rate limits and logs, never the token), else None.

        Every stored hash is compared, in constant time, whichever matches.
        """
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        found: bytes | None = None
        for stored in self._token_hashes:
            if hmac.compare_digest(digest, stored):
                found = stored
        return f"token:{found.hex()[:12]}" if found is not None else None


def main(argv: Sequence[str] | None = None) -> int:
    """`hash-password NAME` (the password from a prompt, or stdin with --stdin) or `new-token`."""
    parser = argparse.ArgumentParser(prog="python -m assistant.server.auth", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    hashing = commands.add_parser("hash-password", help="print NAME:scrypt$… for ASSISTANT_USERS")
    hashing.add_argument("name", help="the user name people type to sign in")
    hashing.add_argument("--stdin", action="store_true", help="read the password from standard input")
    commands.add_parser("new-token", help="print a new API token and the sha256:… to put in ASSISTANT_API_TOKENS")
    args = parser.parse_args(argv)
    if args.command == "new-token":
        token = new_token()
        print(f"token: {token}")
        print(f"for ASSISTANT_API_TOKENS: {hash_token(token)}")
        print("Give the token to the program (header 'Authorization: Bearer <token>'); configure only its hash.",
              file=sys.stderr)
        return 0
    if not args.name or ":" in args.name or "," in args.name or args.name != args.name.strip():
        print(f"error: the user name must be non-empty, without ':', ',' or surrounding blanks, got {args.name!r}",
              file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\r\n") if args.stdin else getpass.getpass(f"password for {args.name}: ")
    if len(password) < 8:
        print("error: use a password of at least 8 characters", file=sys.stderr)
        return 2
    print(f"{args.name}:{hash_password(password)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
