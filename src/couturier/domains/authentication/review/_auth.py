"""Who is signed in, and that a form came from our own page.

* Passwords are stored as scrypt hashes (``hashlib.scrypt``: memory-hard, in the standard
  library), each with its own salt, compared in constant time.
* The session is a cookie signed with the console's secret (itsdangerous, as Starlette's and
  Flask's sessions are): the reviewer's id and a random session id, valid for ``max_age_s``.
  It is ``HttpOnly`` and ``SameSite=Strict``, so another site's page cannot send it.
* Every form carries a CSRF token: an HMAC of the session id under the secret, checked on every
  POST (the synchronizer-token pattern without server state). The sign-in form, which has no
  session yet, carries a signed, timestamped token of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

__all__ = ["Sessions", "hash_password", "verify_password"]

_N, _R, _P = 2**14, 8, 1  # scrypt's cost: ~16 MiB and ~40 ms a hash here


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
        )
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


class Sessions:
    """Signs and reads the session cookie, and makes and checks CSRF tokens."""

    cookie = "couturier_review"

    def __init__(self, secret: str, *, max_age_s: int = 12 * 3600) -> None:
        self._secret = secret.encode()
        self._cookies = URLSafeTimedSerializer(secret, salt="review-session")
        self._login = URLSafeTimedSerializer(secret, salt="review-login")
        self.max_age_s = max_age_s

    def issue(self, reviewer_id: int) -> str:
        """A new session's cookie value."""
        return self._cookies.dumps({"r": reviewer_id, "s": secrets.token_urlsafe(16)})

    def read(self, cookie: str | None) -> tuple[int, str] | None:
        """(reviewer id, session id) of a valid cookie, else None."""
        if not cookie:
            return None
        try:
            data = self._cookies.loads(cookie, max_age=self.max_age_s)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("r"), int):
            return None
        return int(data["r"]), str(data.get("s", ""))

    def csrf(self, session_id: str) -> str:
        return hmac.new(self._secret, session_id.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session_id: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf(session_id), str(token))

    def login_token(self) -> str:
        return self._login.dumps(secrets.token_urlsafe(8))

    def login_token_ok(self, token: str | None, max_age_s: int = 3600) -> bool:
        if not token:
            return False
        try:
            self._login.loads(token, max_age=max_age_s)
        except (BadSignature, SignatureExpired):
            return False
        return True
