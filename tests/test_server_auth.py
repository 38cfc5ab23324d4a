"""assistant.server.auth and the serving settings: password hashes, API tokens, the hash helper."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from assistant.server import auth
from assistant.server.auth import Credentials, hash_password, hash_token, verify_password
from assistant.settings import Settings
from conftest import ROOT

FAST = {"n": 2**8}  # small scrypt cost keeps the tests quick; the format and the check are the same


def test_password_hash_round_trip_and_format():
    hashed = hash_password("correct horse battery", **FAST)
    scheme, n, r, p, salt, digest = hashed.split("$")
    assert (scheme, n, r, p) == ("scrypt", "256", "8", "1") and salt and digest
    assert verify_password("correct horse battery", hashed)
    assert not verify_password("correct horse batterY", hashed) and not verify_password("", hashed)
    assert hash_password("same", **FAST) != hash_password("same", **FAST)  # salted


def test_the_hash_is_scrypt_as_the_standard_library_computes_it():
    """Independent oracle: hashlib.scrypt on the stored salt gives the stored digest."""
    hashed = hash_password("pw-for-oracle", **FAST)
    _, n, r, p, salt, digest = hashed.split("$")
    expected = hashlib.scrypt(b"pw-for-oracle", salt=auth._unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    assert auth._unb64(digest) == expected


@pytest.mark.parametrize(
    "bad, message",
    [
        ("plaintext-password", "must look like scrypt"),
        ("scrypt$16384$8$1$c2FsdA", "must look like scrypt"),
        ("scrypt$1000$8$1$c2FsdA$ZGlnZXN0", "unusable scrypt parameters N=1000"),
        ("scrypt$1048576$64$1$c2FsdA$ZGlnZXN0", "unusable scrypt parameters"),
        ("scrypt$x$8$1$c2FsdA$ZGlnZXN0", "malformed"),
    ],
)
def test_unusable_hashes_are_refused_at_start_with_the_fix(bad, message):
    with pytest.raises(ValueError, match=message):
        Credentials(users={"alice": bad}, tokens=[])
    with pytest.raises(ValueError, match="user 'alice'"):
        Credentials(users={"alice": bad}, tokens=[])


def test_users_sign_in_only_with_their_own_password():
    credentials = Credentials(users={"alice": hash_password("alice-pw", **FAST), "bob": hash_password("bob-pw", **FAST)},
                              tokens=[])
    assert credentials.verify_user("alice", "alice-pw") and credentials.verify_user("bob", "bob-pw")
    assert not credentials.verify_user("alice", "bob-pw") and not credentials.verify_user("carol", "alice-pw")
    assert credentials.required and credentials.has_users and not credentials.has_tokens


def test_tokens_stored_hashed_or_plain_give_stable_ids_never_the_token():
    token = auth.new_token()
    assert len(token) >= 40
    credentials = Credentials(users={}, tokens=[hash_token(token), "plain-token-for-a-test"])
    token_id = credentials.token_id(token)
    assert token_id and token_id.startswith("token:") and token not in token_id
    assert credentials.token_id(token) == token_id  # stable: the rate limit keys on it
    assert credentials.token_id("plain-token-for-a-test") not in (None, token_id)
    assert credentials.token_id(token + "x") is None and credentials.token_id("") is None
    assert credentials.required and credentials.has_tokens and not credentials.has_users
    with pytest.raises(ValueError, match="64 hex digits"):
        Credentials(users={}, tokens=["sha256:abc"])


def test_nobody_configured_means_no_sign_in_required():
    assert not Credentials(users={}, tokens=[]).required


def test_settings_read_users_and_tokens_as_entries_or_json(monkeypatch):
    alice, bob = hash_password("a-password", **FAST), hash_password("b-password", **FAST)
    monkeypatch.setenv("ASSISTANT_USERS", f"alice:{alice},\n bob:{bob}")
    monkeypatch.setenv("ASSISTANT_API_TOKENS", f"{hash_token('t1')}, t2")
    monkeypatch.setenv("ASSISTANT_ALLOWED_ORIGINS", "https://assistant.example.org")
    settings = Settings()
    credentials = Credentials.from_settings(settings)
    assert credentials.verify_user("bob", "b-password") and credentials.token_id("t1") and credentials.token_id("t2")
    assert settings.allowed_origins == ["https://assistant.example.org"]
    assert alice not in repr(settings)  # secrets stay out of logs and tracebacks
    monkeypatch.setenv("ASSISTANT_USERS", f'{{"alice": "{alice}"}}')
    assert list(Settings().users) == ["alice"]
    monkeypatch.setenv("ASSISTANT_USERS", "alice")
    with pytest.raises(ValueError, match="entry 1 is not `name:hash`"):
        Settings()


def test_serving_settings_defaults_and_bounds():
    settings = Settings()
    assert settings.rate_limit == 60 and settings.rate_burst >= 1 and not settings.allow_anonymous
    assert settings.max_request_bytes >= 100 * settings.max_question_chars
    assert Settings(rate_limit=0).rate_limit == 0
    with pytest.raises(ValueError):
        Settings(rate_limit=-1)


def test_the_hash_helper_prints_a_usable_entry_and_a_token():
    run = [sys.executable, "-m", "assistant.server.auth"]
    made = subprocess.run([*run, "hash-password", "alice", "--stdin"], input="a long password\n", cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    name, _, hashed = made.stdout.strip().partition(":")
    assert name == "alice" and verify_password("a long password", hashed)
    short = subprocess.run([*run, "hash-password", "alice", "--stdin"], input="short\n", cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert short.returncode == 2 and "at least 8" in short.stderr and "Traceback" not in short.stderr
    token = subprocess.run([*run, "new-token"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = dict(line.split(": ", 1) for line in token.stdout.strip().splitlines())
    assert lines["for ASSISTANT_API_TOKENS"] == hash_token(lines["token"]) and "Bearer" in token.stderr
