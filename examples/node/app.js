'use strict';
// An app that calls the Naver Commerce API with tokens read from Vault (node-vault).
//
// It holds no client secret and signs nothing: it reads navercommerce/token/<role>, sends the
// access token as "Authorization: Bearer", and reads again when the token is due:
// - a leased role: at 90% of lease_duration (what Vault Agent does; the lease is the token's
//   remaining life, so the re-read lands inside Naver's last 30 minutes, where a new token
//   exists);
// - a lease-free role (lease=false): at 90% of expires_in, the same rule on the same clock;
// - either: at once when the API answers 401 (the token was refused), once per call.
//
// Settings (environment):
//   VAULT_ADDR, VAULT_TOKEN   Vault's address and a token allowed to read the role's token
//   NAVER_COMMERCE_MOUNT      where the secrets engine is mounted (default navercommerce)
//   NAVER_COMMERCE_ROLE       the role (default my-store)
//   NAVER_COMMERCE_API_URL    API base URL (default https://api.commerce.naver.com/external)
//   APP_ITERATIONS            API calls to make, then exit (default 0: forever)
//   APP_INTERVAL              seconds between API calls (default 60)

const vault = require('node-vault');

// Re-read at this fraction of the token's remaining life, as Vault Agent does.
const REFRESH_FRACTION = 0.9;

// The role's current token, read from Vault again when it is due.
class VaultToken {
  constructor(client, mount, role) {
    this.client = client;
    this.path = `${mount}/token/${role}`;
    this.accessToken = null;
    this.refreshAt = 0; // performance.now() in ms after which the token is read again
  }

  async get() {
    if (this.accessToken === null) {
      await this.read('first read');
    } else if (performance.now() >= this.refreshAt) {
      await this.read('due');
    }
    return this.accessToken;
  }

  // The API refused the token: read a new one now.
  async refused() {
    await this.read('refused by the API');
    return this.accessToken;
  }

  async read(reason) {
    const secret = await this.client.read(this.path);
    const data = (secret && secret.data) || {};
    if (!data.access_token) {
      throw new Error(`reading ${this.path}: no token in the response`);
    }
    const lease = secret.lease_duration || 0;
    // A lease-free role has no lease: its data says how long the token lives.
    const life = lease > 0 ? lease : Number(data.expires_in);
    this.accessToken = data.access_token;
    this.refreshAt = performance.now() + REFRESH_FRACTION * life * 1000;
    const kind = lease > 0 ? `lease ${lease}s` : 'no lease';
    console.log(`read token (${reason}): ${kind}, expires in ${data.expires_in}s, ` +
      `next read in ${Math.floor(REFRESH_FRACTION * life)}s`);
  }
}

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
  const apiUrl = (env.NAVER_COMMERCE_API_URL || 'https://api.commerce.naver.com/external').replace(/\/+$/, '');
  const iterations = Number(env.APP_ITERATIONS || '0');
  const interval = Number(env.APP_INTERVAL || '60');

  // node-vault reads VAULT_ADDR and VAULT_TOKEN.
  const token = new VaultToken(vault(), mount, role);
  for (let done = 0; iterations === 0 || done < iterations;) {
    let resp = await callApi(apiUrl, await token.get());
    if (resp.status === 401) {
      console.log('API 401: token refused; reading a new one');
      resp = await callApi(apiUrl, await token.refused());
    }
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
    // node-vault's errors carry Vault's message; neither holds a token or a secret.
    console.error(`error: ${err.message}`);
    process.exitCode = 1;
  },
);
