"""Naver Commerce API tokens read from Vault's navercommerce secrets engine (hvac).

Import it; do not copy it. The app holds no client secret and signs nothing:

    import requests
    from navercommerce_vault import NaverToken

    token = NaverToken("my-store")                        # a single-account (or SELF) role
    token = NaverToken("sellers", account_id="ncp_abc")   # one seller of a many-seller role

    resp = token.call(lambda access_token: requests.get(
        "https://api.commerce.naver.com/external/v1/seller/account",
        headers={"Authorization": f"Bearer {access_token}"}, timeout=10))

What it does for the app:

- reads navercommerce/token/<role> (or <role>/<account_id>) and reads again when the token is
  due: at 90% of the lease (what Vault Agent does; the lease is the token's remaining life,
  so the re-read lands inside Naver's last 30 minutes, where a new token exists), or of
  expires_in on a lease-free role (lease=false);
- retries Vault's 5xx answers and connection errors, a bounded number of times
  (VaultUnavailable after that);
- on Vault's 403 raises VaultPermissionDenied, saying which path the policy must grant;
- when the API answers 401 to the token, reads it again once and sends the call again with
  the new token; if Naver refuses again, or Vault still serves the same token, raises
  TokenRefused, whose message tells what to ask the Vault operator (the drop recipe,
  examples/operations/drop-token.sh, and its vault delete command).

Every error is a NaverTokenError. No message holds a token: neither Naver's nor Vault's.
Progress goes to the logging module (logger "navercommerce_vault").
"""

import json
import logging
import re
import shlex
import threading
import time
import urllib.parse

import hvac
import requests

__all__ = [
    "NaverToken",
    "NaverTokenError",
    "TokenRefused",
    "VaultPermissionDenied",
    "VaultRefused",
    "VaultUnavailable",
]

log = logging.getLogger(__name__)

# Re-read at this fraction of the token's remaining life, as Vault Agent does.
REFRESH_FRACTION = 0.9


class NaverTokenError(Exception):
    """Getting or using a token failed; the message says why and what to do."""


class VaultUnavailable(NaverTokenError):
    """Vault could not be reached, or answered 5xx, on every attempt."""


class VaultPermissionDenied(NaverTokenError):
    """Vault answered 403: the Vault token is not valid, or its policy does not grant the path."""


class VaultRefused(NaverTokenError):
    """Vault answered another 4xx (an unknown role, an account the role does not allow, ...)."""


class TokenRefused(NaverTokenError):
    """The API answered 401 also after a fresh read: the operator must drop the token."""

    def __init__(self, message, drop_recipe, vault_delete):
        super().__init__(message)
        self.drop_recipe = drop_recipe    # the command line of examples/operations/drop-token.sh
        self.vault_delete = vault_delete  # the vault delete command the recipe runs


class NaverToken:
    """The token of one role (or one seller of a many-seller role), read from Vault when due.

    role         the role (navercommerce/roles/<role>)
    account_id   on a many-seller role (allowed_account_ids), the seller; None otherwise
    mount        where the secrets engine is mounted
    client       an hvac.Client; default: hvac.Client(timeout=vault_timeout), which reads
                 VAULT_ADDR, VAULT_TOKEN (or ~/.vault-token), VAULT_CACERT
    retries      how many times a read is tried again after a 5xx or a connection error
    retry_wait   seconds before the first retry; each further retry waits twice as long,
                 at most max_retry_wait
    """

    def __init__(self, role, account_id=None, *, mount="navercommerce", client=None,
                 retries=3, retry_wait=0.5, max_retry_wait=5.0, vault_timeout=10,
                 sleep=time.sleep, clock=time.monotonic):
        _check_segment("role", role)
        if account_id is not None and account_id != "":
            _check_segment("account_id", account_id)
        else:
            account_id = None
        mount = mount.strip("/")
        if not mount:
            raise ValueError("mount: must not be empty")
        if retries < 0:
            raise ValueError("retries: must not be negative")
        self.role = role
        self.account_id = account_id
        self.mount = mount
        # The account goes into the URL path: quoted, so "?", "#" or "%" in an ID stay in it.
        self.path = f"{mount}/token/{role}"
        self.quoted_path = f"{mount}/token/{urllib.parse.quote(role, safe='')}"
        if account_id is not None:
            self.path += f"/{account_id}"
            self.quoted_path += f"/{urllib.parse.quote(account_id, safe='')}"
        self.client = client if client is not None else hvac.Client(timeout=vault_timeout)
        self.retries = retries
        self.retry_wait = retry_wait
        self.max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._access_token = None
        self._refresh_at = 0.0  # clock() after which the token is read again
        self._type = None
        self._read_account = None

    def describe(self):
        """Role and account, as messages name them: "role sellers, account ncp_abc"."""
        account = self.account_id or self._read_account
        if account:
            return f"role {self.role}, account {account}"
        if self._type == "SELF":
            return f"role {self.role} (SELF)"
        return f"role {self.role}"

    def get(self):
        """The access token, read from Vault the first time and whenever it is due."""
        with self._lock:
            if self._access_token is None:
                self._read("first read")
            elif self._clock() >= self._refresh_at:
                self._read("due")
            return self._access_token

    def read_again(self, reason="asked"):
        """Read the token from Vault now, whatever its age, and return it."""
        with self._lock:
            self._read(reason)
            return self._access_token

    def call(self, send):
        """Call the API: send(access_token) returns a response with status_code (requests).

        A 401 makes it read the token again once and send again with the new one; if Naver
        refuses that too, or Vault still serves the refused token, TokenRefused is raised.
        Any other answer is returned as it is.
        """
        refused = self.get()
        resp = send(refused)
        if resp.status_code != 401:
            return resp
        log.warning("API 401 to the token of %s: reading it again from Vault", self.describe())
        with self._lock:
            if self._access_token == refused:  # else another thread has read it again already
                self._read("refused by the API")
            fresh = self._access_token
        if fresh == refused:
            raise self._refused("Vault still serves the token Naver refused")
        resp = send(fresh)
        if resp.status_code == 401:
            raise self._refused("Naver refused the token read again from Vault too")
        return resp

    def _refused(self, what):
        recipe = f"ROLE={shlex.quote(self.role)}"
        if self.account_id is not None:
            recipe += f" ACCOUNT_ID={shlex.quote(self.account_id)}"
        if self.mount != "navercommerce":
            recipe += f" MOUNT={shlex.quote(self.mount)}"
        recipe += " examples/operations/drop-token.sh"
        delete = f"vault delete {shlex.quote(self.path)}"
        return TokenRefused(
            f"the Naver Commerce API answered 401 to the token of {self.describe()}, and {what}. "
            f"Vault keeps a token Naver no longer accepts (for example after the seller "
            f"re-authorised the application). Ask the Vault operator to drop it with the drop "
            f"recipe: {recipe} (it runs {delete} once Naver refuses the token with 401). "
            f"The next call reads the new token.",
            recipe, delete)

    def _read(self, reason):
        secret = self._read_vault()
        data = secret.get("data") if isinstance(secret, dict) else None
        if not isinstance(data, dict) or not data.get("access_token"):
            raise NaverTokenError(f"reading {self.path}: Vault's answer has no access_token")
        lease = secret.get("lease_duration") or 0
        # A lease-free role has no lease: its data says how long the token lives.
        life = lease if lease > 0 else int(data.get("expires_in") or 0)
        self._access_token = data["access_token"]
        self._refresh_at = self._clock() + REFRESH_FRACTION * life
        self._type = data.get("type")
        self._read_account = data.get("account_id") or None
        kind = f"lease {lease}s" if lease > 0 else "no lease"
        log.info("read token of %s (%s): %s, expires in %ss, next read in %ds",
                 self.describe(), reason, kind, data.get("expires_in"), int(REFRESH_FRACTION * life))

    def _read_vault(self):
        """GET the token path: the answer's JSON, after retrying 5xx and connection errors."""
        url = self.client.url
        for attempt in range(self.retries + 1):
            try:
                # hvac's exceptions do not carry the status (a 504 is UnexpectedError), so the
                # answer is looked at here.
                resp = self.client.adapter.get(f"/v1/{self.quoted_path}", raise_exception=False)
            except requests.RequestException as e:
                failure = f"cannot reach Vault at {url}: {_connection_failure(e)}"
            else:
                if isinstance(resp, dict):
                    return resp
                status = resp.status_code
                errors = _vault_errors(resp)
                if status == 403:
                    raise VaultPermissionDenied(
                        f"Vault refused to read {self.path}: 403 {errors}. The Vault token "
                        f"(VAULT_TOKEN) is not valid (expired, revoked, mistyped), or its "
                        f"policy does not allow reading this path: ask the Vault operator for "
                        f"a token with the policy "
                        f'path {json.dumps(self.path)} {{ capabilities = ["read"] }}')
                if status == 404:
                    raise VaultRefused(
                        f"Vault answered 404 to {self.path}: {errors}. Nothing is mounted "
                        f"there: check the mount ({self.mount}) and VAULT_ADDR ({url})")
                if status < 500:
                    raise VaultRefused(f"Vault answered {status} to {self.path}: {errors}")
                failure = f"Vault at {url} answered {status}: {errors}"
            if attempt == self.retries:
                raise VaultUnavailable(
                    f"reading {self.path}: {failure} (gave up after {attempt + 1} attempts)")
            wait = min(self.retry_wait * 2 ** attempt, self.max_retry_wait)
            log.warning("reading %s: %s; retry %d of %d in %.1fs",
                        self.path, failure, attempt + 1, self.retries, wait)
            self._sleep(wait)
        raise AssertionError("unreachable")


def _check_segment(field, value):
    """A role or account ID is one segment of a Vault path."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: must be a non-empty string")
    if "/" in value or value in (".", ".."):
        raise ValueError(f"{field} {value!r}: must be one name, without / (and not . or ..)")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"{field} {value!r}: must be printable characters without white space")


def _connection_failure(e):
    """The gist of a requests error: "ConnectionError: ... Connection refused"."""
    cause = e.args[0] if e.args else e
    cause = getattr(cause, "reason", cause)  # urllib3's MaxRetryError wraps the cause
    if isinstance(cause, Exception) and len(cause.args) == 2 and isinstance(cause.args[1], Exception):
        cause = cause.args[1]  # ("Connection aborted.", RemoteDisconnected(...))
    return f"{type(e).__name__}: {re.sub(r'<[^>]*>: ', '', str(cause))}"


def _vault_errors(resp):
    """Vault's error messages of an answer ("errors"), or the start of its body."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        # Vault may send one multi-line error: "1 error occurred:\n\t* permission denied\n\n".
        lines = [line.strip().lstrip("* ") for e in errors for line in str(e).splitlines()]
        text = "; ".join(line for line in lines if line and not _ERRORS_OCCURRED.match(line))
    else:
        text = (resp.text or resp.reason or "").strip()[:200]
    return text.rstrip(".") or "no message"


_ERRORS_OCCURRED = re.compile(r"^\d+ errors? occurred:$")
