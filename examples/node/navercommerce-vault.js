'use strict';
// Naver Commerce API tokens read from Vault's navercommerce secrets engine (node-vault).
//
// Require it; do not copy it. The app holds no client secret and signs nothing:
//
//   const { NaverToken } = require('./navercommerce-vault');
//
//   const token = new NaverToken('my-store');                            // a single-account (or SELF) role
//   const token = new NaverToken('sellers', { accountId: 'ncp_abc' });   // one seller of a many-seller role
//
//   const resp = await token.call((accessToken) => fetch(
//     'https://api.commerce.naver.com/external/v1/seller/account',
//     { headers: { Authorization: `Bearer ${accessToken}` } }));
//
// What it does for the app:
// - reads navercommerce/token/<role> (or <role>/<account_id>) and reads again when the token
//   is due: at 90% of the lease (what Vault Agent does; the lease is the token's remaining
//   life, so the re-read lands inside Naver's last 30 minutes, where a new token exists), or
//   of expires_in on a lease-free role (lease=false);
// - retries Vault's 5xx answers and connection errors, a bounded number of times
//   (VaultUnavailable after that);
// - on Vault's 403 throws VaultPermissionDenied, saying which path the policy must grant;
// - when the API answers 401 to the token, reads it again once and sends the call again with
//   the new token; if Naver refuses again, or Vault still serves the same token, throws
//   TokenRefused, whose message tells what to ask the Vault operator (the drop recipe,
//   examples/operations/drop-token.sh, and its vault delete command).
//
// Every error is a NaverTokenError. No message holds a token: neither Naver's nor Vault's.
// Progress goes to options.log (default console.log).

const nodeVault = require('node-vault');

// Re-read at this fraction of the token's remaining life, as Vault Agent does.
const REFRESH_FRACTION = 0.9;

// Getting or using a token failed; the message says why and what to do.
class NaverTokenError extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
}
// Vault could not be reached, or answered 5xx, on every attempt.
class VaultUnavailable extends NaverTokenError {}
// Vault answered 403: the Vault token is not valid, or its policy does not grant the path.
class VaultPermissionDenied extends NaverTokenError {}
// Vault answered another 4xx (an unknown role, an account the role does not allow, ...).
class VaultRefused extends NaverTokenError {}
// The API answered 401 also after a fresh read: the operator must drop the token.
class TokenRefused extends NaverTokenError {
  constructor(message, dropRecipe, vaultDelete) {
    super(message);
    this.dropRecipe = dropRecipe; // the command line of examples/operations/drop-token.sh
    this.vaultDelete = vaultDelete; // the vault delete command the recipe runs
  }
}

// The token of one role (or one seller of a many-seller role), read from Vault when due.
//   role                 the role (navercommerce/roles/<role>)
//   options.accountId    on a many-seller role (allowed_account_ids), the seller
//   options.mount        where the secrets engine is mounted (default navercommerce)
//   options.client       a node-vault client; default: one reading VAULT_ADDR and VAULT_TOKEN
//   options.retries      how many times a read is tried again after a 5xx or a connection
//                        error (default 3)
//   options.retryWait    ms before the first retry (default 500); each further retry waits
//                        twice as long, at most options.maxRetryWait (default 5000)
//   options.vaultTimeout ms one request to Vault may take (default 10000)
//   options.log          where progress goes (default console.log)
class NaverToken {
  constructor(role, options = {}) {
    checkSegment('role', role);
    const accountId = options.accountId || null;
    if (accountId !== null) checkSegment('accountId', accountId);
    const mount = (options.mount || 'navercommerce').replace(/^\/+|\/+$/g, '');
    if (!mount) throw new TypeError('mount: must not be empty');
    this.role = role;
    this.accountId = accountId;
    this.mount = mount;
    // The account goes into the URL path: encoded, so "?", "#" or "%" in an ID stay in it.
    this.path = `${mount}/token/${role}` + (accountId !== null ? `/${accountId}` : '');
    this.encodedPath = `${mount}/token/${encodeURIComponent(role)}` +
      (accountId !== null ? `/${encodeURIComponent(accountId)}` : '');
    this.client = options.client || nodeVault();
    this.retries = options.retries ?? 3;
    if (!(this.retries >= 0)) throw new TypeError('retries: must not be negative');
    this.retryWait = options.retryWait ?? 500;
    this.maxRetryWait = options.maxRetryWait ?? 5000;
    this.vaultTimeout = options.vaultTimeout ?? 10000;
    this.log = options.log || console.log;
    this.sleep = options.sleep || ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.clock = options.clock || (() => performance.now());
    this.accessToken = null;
    this.refreshAt = 0; // clock() in ms after which the token is read again
    this.type = null;
    this.readAccount = null;
    this.reading = null; // the read in flight: concurrent calls share it
  }

  // Role and account, as messages name them: "role sellers, account ncp_abc".
  describe() {
    const account = this.accountId || this.readAccount;
    if (account) return `role ${this.role}, account ${account}`;
    if (this.type === 'SELF') return `role ${this.role} (SELF)`;
    return `role ${this.role}`;
  }

  // The access token, read from Vault the first time and whenever it is due.
  async get() {
    if (this.accessToken === null) return this.readAgain('first read');
    if (this.clock() >= this.refreshAt) return this.readAgain('due');
    return this.accessToken;
  }

  // Read the token from Vault now, whatever its age, and return it.
  async readAgain(reason = 'asked') {
    if (!this.reading) {
      this.reading = this.read(reason).finally(() => { this.reading = null; });
    }
    await this.reading;
    return this.accessToken;
  }

  // Call the API: send(accessToken) resolves to a response with status (fetch).
  // A 401 makes it read the token again once and send again with the new one; if Naver
  // refuses that too, or Vault still serves the refused token, TokenRefused is thrown. Any
  // other answer is returned as it is.
  async call(send) {
    const refused = await this.get();
    let resp = await send(refused);
    if (resp.status !== 401) return resp;
    this.log(`API 401 to the token of ${this.describe()}: reading it again from Vault`);
    // Another call may have read it again already.
    const fresh = this.accessToken !== refused ? this.accessToken : await this.readAgain('refused by the API');
    if (fresh === refused) throw this.refusedError('Vault still serves the token Naver refused');
    resp = await send(fresh);
    if (resp.status === 401) throw this.refusedError('Naver refused the token read again from Vault too');
    return resp;
  }

  refusedError(what) {
    let recipe = `ROLE=${shellQuote(this.role)}`;
    if (this.accountId !== null) recipe += ` ACCOUNT_ID=${shellQuote(this.accountId)}`;
    if (this.mount !== 'navercommerce') recipe += ` MOUNT=${shellQuote(this.mount)}`;
    recipe += ' examples/operations/drop-token.sh';
    const del = `vault delete ${shellQuote(this.path)}`;
    return new TokenRefused(
      `the Naver Commerce API answered 401 to the token of ${this.describe()}, and ${what}. ` +
      'Vault keeps a token Naver no longer accepts (for example after the seller ' +
      're-authorised the application). Ask the Vault operator to drop it with the drop ' +
      `recipe: ${recipe} (it runs ${del} once Naver refuses the token with 401). ` +
      'The next call reads the new token.',
      recipe, del);
  }

  async read(reason) {
    const secret = await this.readVault();
    const data = secret && secret.data;
    if (!data || !data.access_token) {
      throw new NaverTokenError(`reading ${this.path}: Vault's answer has no access_token`);
    }
    const lease = secret.lease_duration || 0;
    // A lease-free role has no lease: its data says how long the token lives.
    const life = lease > 0 ? lease : Number(data.expires_in || 0);
    this.accessToken = data.access_token;
    this.refreshAt = this.clock() + REFRESH_FRACTION * life * 1000;
    this.type = data.type || null;
    this.readAccount = data.account_id || null;
    const kind = lease > 0 ? `lease ${lease}s` : 'no lease';
    this.log(`read token of ${this.describe()} (${reason}): ${kind}, ` +
      `expires in ${data.expires_in}s, next read in ${Math.floor(REFRESH_FRACTION * life)}s`);
  }

  // GET the token path: the answer's JSON, after retrying 5xx and connection errors.
  async readVault() {
    const url = this.client.endpoint;
    for (let attempt = 0; ; attempt++) {
      let failure;
      try {
        return await this.client.read(this.encodedPath, { timeout: this.vaultTimeout });
      } catch (err) {
        const status = err.response && err.response.statusCode;
        if (!status) {
          // No answer: node-vault passes on the HTTP client's error (ECONNREFUSED, ...).
          // Only its message: the error object also holds the request, Vault token included.
          failure = `cannot reach Vault at ${url}: ${err.code || ''} ${err.message}`.replace(/ +/g, ' ');
        } else {
          const errors = vaultErrors(err.response.body, err.message);
          if (status === 403) {
            throw new VaultPermissionDenied(
              `Vault refused to read ${this.path}: 403 ${errors}. The Vault token ` +
              '(VAULT_TOKEN) is not valid (expired, revoked, mistyped), or its policy does ' +
              'not allow reading this path: ask the Vault operator for a token with the ' +
              `policy path ${JSON.stringify(this.path)} { capabilities = ["read"] }`);
          }
          if (status === 404) {
            throw new VaultRefused(
              `Vault answered 404 to ${this.path}: ${errors}. Nothing is mounted there: ` +
              `check the mount (${this.mount}) and VAULT_ADDR (${url})`);
          }
          if (status < 500) throw new VaultRefused(`Vault answered ${status} to ${this.path}: ${errors}`);
          failure = `Vault at ${url} answered ${status}: ${errors}`;
        }
      }
      if (attempt >= this.retries) {
        throw new VaultUnavailable(`reading ${this.path}: ${failure} (gave up after ${attempt + 1} attempts)`);
      }
      const wait = Math.min(this.retryWait * 2 ** attempt, this.maxRetryWait);
      this.log(`reading ${this.path}: ${failure}; retry ${attempt + 1} of ${this.retries} in ${(wait / 1000).toFixed(1)}s`);
      await this.sleep(wait);
    }
  }
}

// A role or account ID is one segment of a Vault path.
function checkSegment(field, value) {
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`${field}: must be a non-empty string`);
  }
  if (value.includes('/') || value === '.' || value === '..') {
    throw new TypeError(`${field} ${JSON.stringify(value)}: must be one name, without / (and not . or ..)`);
  }
  if (/[\s\p{C}]/u.test(value)) {
    throw new TypeError(`${field} ${JSON.stringify(value)}: must be printable characters without white space`);
  }
}

// Vault's error messages of an answer ("errors"), or the start of its body.
function vaultErrors(body, fallback) {
  let text = '';
  if (body && Array.isArray(body.errors) && body.errors.length > 0) {
    // Vault may send one multi-line error: "1 error occurred:\n\t* permission denied\n\n".
    text = body.errors.flatMap((e) => String(e).split('\n'))
      .map((line) => line.trim().replace(/^\* /, ''))
      .filter((line) => line !== '' && !/^\d+ errors? occurred:$/.test(line))
      .join('; ');
  } else if (typeof body === 'string') {
    text = body.trim().slice(0, 200);
  }
  return text.replace(/\.+$/, '') || fallback || 'no message';
}

// A word for a POSIX shell, quoted only when it needs it.
function shellQuote(s) {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

module.exports = {
  NaverToken,
  NaverTokenError,
  TokenRefused,
  VaultPermissionDenied,
  VaultRefused,
  VaultUnavailable,
};
