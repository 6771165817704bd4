'use strict';
// An app that calls the Naver Commerce API with tokens read from Vault (node-vault).
//
// It holds no client secret and signs nothing: navercommerce-vault.js (beside this file;
// require it in your app) reads navercommerce/token/<role>, or <role>/<account_id> for one
// seller of a many-seller role, reads again when the token is due, retries Vault's 5xx and
// connection errors a bounded number of times, and reads again once when the API answers 401.
//
// Settings (environment):
//   VAULT_ADDR, VAULT_TOKEN     Vault's address and a token allowed to read the token's path
//   NAVER_COMMERCE_MOUNT        where the secrets engine is mounted (default navercommerce)
//   NAVER_COMMERCE_ROLE         the role (default my-store)
//   NAVER_COMMERCE_ACCOUNT_ID   on a many-seller role, the seller (default: none)
//   NAVER_COMMERCE_API_URL      API base URL (default https://api.commerce.naver.com/external)
//   APP_ITERATIONS              API calls to make, then exit (default 0: forever)
//   APP_INTERVAL                seconds between API calls (default 60)

const { NaverToken, NaverTokenError } = require('./navercommerce-vault');

// GET /v1/seller/account, the way any Naver Commerce API call sends the token.
function callApi(apiUrl, accessToken) {
  return fetch(`${apiUrl}/v1/seller/account`, {
    headers: { Authorization: `Bearer ${accessToken}`, Accept: 'application/json' },
    signal: AbortSignal.timeout(10000),
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const env = process.env;
  const mount = env.NAVER_COMMERCE_MOUNT || 'navercommerce';
  const role = env.NAVER_COMMERCE_ROLE || 'my-store';
  const accountId = env.NAVER_COMMERCE_ACCOUNT_ID || null;
  const apiUrl = (env.NAVER_COMMERCE_API_URL || 'https://api.commerce.naver.com/external').replace(/\/+$/, '');
  const iterations = Number(env.APP_ITERATIONS || '0');
  const interval = Number(env.APP_INTERVAL || '60');

  const token = new NaverToken(role, { accountId, mount });
  for (let done = 0; iterations === 0 || done < iterations;) {
    const resp = await token.call((accessToken) => callApi(apiUrl, accessToken));
    if (resp.status !== 200) {
      // Naver's error body has code, message and traceId; it never holds the token.
      console.error(`API ${resp.status}: ${(await resp.text()).slice(0, 500)}`);
      return 1;
    }
    const account = await resp.json();
    console.log(`API 200: account ${account.accountId} (${account.type})`);
    done++;
    if (iterations === 0 || done < iterations) {
      await sleep(interval * 1000);
    }
  }
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (err) => {
    // Only the message: the module's (NaverTokenError) say what to do and hold no token;
    // an HTTP client's error object may hold the request, headers included.
    console.error(`error: ${err instanceof NaverTokenError ? '' : `${err.name}: `}${err.message}`);
    process.exitCode = 1;
  },
);
