#!/usr/bin/python3
"""An app that calls the Naver Commerce API with tokens read from Vault (hvac).

It holds no client secret and signs nothing: it reads navercommerce/token/<role>, sends the
access token as "Authorization: Bearer", and reads again when the token is due:

- a leased role: at 90% of lease_duration (what Vault Agent does; the lease is the token's
  remaining life, so the re-read lands inside Naver's last 30 minutes, where a new token
  exists);
- a lease-free role (lease=false): at 90% of expires_in, the same rule on the same clock;
- either: at once when the API answers 401 (the token was refused), once per call.

Settings (environment):
  VAULT_ADDR, VAULT_TOKEN     Vault's address and a token allowed to read the role's token
  NAVER_COMMERCE_MOUNT        where the secrets engine is mounted (default navercommerce)
  NAVER_COMMERCE_ROLE         the role (default my-store)
  NAVER_COMMERCE_API_URL      API base URL (default https://api.commerce.naver.com/external)
  APP_ITERATIONS              API calls to make, then exit (default 0: forever)
  APP_INTERVAL                seconds between API calls (default 60)
"""

import os
import sys
import time

import hvac
import requests

# Re-read at this fraction of the token's remaining life, as Vault Agent does.
REFRESH_FRACTION = 0.9


class VaultToken:
    """The role's current token, read from Vault again when it is due."""

    def __init__(self, client, mount, role):
        self.client = client
        self.path = f"{mount}/token/{role}"
        self.access_token = None
        self.refresh_at = 0.0  # time.monotonic() after which the token is read again

    def get(self):
        if self.access_token is None:
            self._read("first read")
        elif time.monotonic() >= self.refresh_at:
            self._read("due")
        return self.access_token

    def refused(self):
        """The API refused the token: read a new one now."""
        self._read("refused by the API")
        return self.access_token

    def _read(self, reason):
        secret = self.client.read(self.path)
        if not secret or "access_token" not in secret.get("data", {}):
            raise RuntimeError(f"reading {self.path}: no token in the response")
        data = secret["data"]
        lease = secret.get("lease_duration") or 0
        # A lease-free role has no lease: its data says how long the token lives.
        life = lease if lease > 0 else int(data["expires_in"])
        self.access_token = data["access_token"]
        self.refresh_at = time.monotonic() + REFRESH_FRACTION * life
        kind = f"lease {lease}s" if lease > 0 else "no lease"
        print(f"read token ({reason}): {kind}, expires in {data['expires_in']}s, "
              f"next read in {int(REFRESH_FRACTION * life)}s", flush=True)


def call_api(api_url, access_token):
    """GET /v1/seller/account, the way any Naver Commerce API call sends the token."""
    return requests.get(
        f"{api_url}/v1/seller/account",
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        timeout=10,
    )


def main():
    mount = os.environ.get("NAVER_COMMERCE_MOUNT", "navercommerce")
    role = os.environ.get("NAVER_COMMERCE_ROLE", "my-store")
    api_url = os.environ.get("NAVER_COMMERCE_API_URL", "https://api.commerce.naver.com/external").rstrip("/")
    iterations = int(os.environ.get("APP_ITERATIONS", "0"))
    interval = float(os.environ.get("APP_INTERVAL", "60"))

    # hvac.Client reads VAULT_ADDR and VAULT_TOKEN.
    token = VaultToken(hvac.Client(), mount, role)
    done = 0
    while iterations == 0 or done < iterations:
        resp = call_api(api_url, token.get())
        if resp.status_code == 401:
            print("API 401: token refused; reading a new one", flush=True)
            resp = call_api(api_url, token.refused())
        if resp.status_code != 200:
            # Naver's error body has code, message and traceId; it never holds the token.
            print(f"API {resp.status_code}: {resp.text[:500]}", file=sys.stderr, flush=True)
            return 1
        account = resp.json()
        print(f"API 200: account {account.get('accountId')} ({account.get('type')})", flush=True)
        done += 1
        if iterations == 0 or done < iterations:
            time.sleep(interval)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (hvac.exceptions.VaultError, requests.RequestException, RuntimeError) as e:
        # Vault's and the HTTP client's messages hold neither a token nor a secret.
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
