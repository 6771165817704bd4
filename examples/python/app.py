#!/usr/bin/python3
"""An app that calls the Naver Commerce API with tokens read from Vault (hvac).

It holds no client secret and signs nothing: navercommerce_vault (beside this file; import
it in your app) reads navercommerce/token/<role>, or <role>/<account_id> for one seller of a
many-seller role, reads again when the token is due, retries Vault's 5xx and connection
errors a bounded number of times, and reads again once when the API answers 401.

Settings (environment):
  VAULT_ADDR, VAULT_TOKEN      Vault's address and a token allowed to read the token's path
  NAVER_COMMERCE_MOUNT         where the secrets engine is mounted (default navercommerce)
  NAVER_COMMERCE_ROLE          the role (default my-store)
  NAVER_COMMERCE_ACCOUNT_ID    on a many-seller role, the seller (default: none)
  NAVER_COMMERCE_API_URL       API base URL (default https://api.commerce.naver.com/external)
  APP_ITERATIONS               API calls to make, then exit (default 0: forever)
  APP_INTERVAL                 seconds between API calls (default 60)
"""

import logging
import os
import sys
import time

import requests

from navercommerce_vault import NaverToken, NaverTokenError


def call_api(api_url, access_token):
    """GET /v1/seller/account, the way any Naver Commerce API call sends the token."""
    return requests.get(
        f"{api_url}/v1/seller/account",
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        timeout=10,
    )


def main():
    env = os.environ
    mount = env.get("NAVER_COMMERCE_MOUNT", "navercommerce")
    role = env.get("NAVER_COMMERCE_ROLE", "my-store")
    account_id = env.get("NAVER_COMMERCE_ACCOUNT_ID") or None
    api_url = env.get("NAVER_COMMERCE_API_URL", "https://api.commerce.naver.com/external").rstrip("/")
    iterations = int(env.get("APP_ITERATIONS", "0"))
    interval = float(env.get("APP_INTERVAL", "60"))

    token = NaverToken(role, account_id, mount=mount)
    done = 0
    while iterations == 0 or done < iterations:
        resp = token.call(lambda access_token: call_api(api_url, access_token))
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
    # The module's progress (reads, retries) on standard output, beside the app's.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        sys.exit(main())
    except (NaverTokenError, requests.RequestException, ValueError) as e:
        # The module's and the HTTP client's messages hold neither a token nor a secret.
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
