// A small relying party web app on 127.0.0.1, built on openid-client (panva, v6). It knows
// nothing about Sesame beyond the issuer URL and the client credentials: everything else comes
// from discovery, and every check on the answers (state, PKCE, ID token iss/aud/exp/nonce and its
// signature against the JWKS, userinfo sub) is the library's.
//
//   GET /             a page saying whether someone is signed in
//   GET /login        starts the authorization code flow (PKCE S256, state, nonce)
//   GET /callback     exchanges the code, fetches userinfo, shows both
//   GET /refresh      uses the refresh token, shows the new tokens
//   GET /logout       redirects to the end-session endpoint (id_token_hint, post_logout_redirect_uri, state)
//   GET /logged-out   checks the state and forgets the session
//
// The test reads what the RP saw through `sessionOf(sid)` (sid from the browser's cookie).

import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import * as oidc from 'openid-client';

export const SCOPE = 'openid profile email offline_access';

const esc = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em;white-space:pre-wrap;word-break:break-all}</style>
</head><body><h1>${esc(title)}</h1>${body}</body></html>`;
}

/** Serializes what openid-client's errors carry (OAuth error bodies, causes) for a page or a log. */
export function describeError(e) {
  const out = { name: e?.name, message: e?.message };
  for (const k of ['code', 'error', 'error_description', 'status']) if (e?.[k] !== undefined) out[k] = e[k];
  if (e?.cause !== undefined) {
    out.cause = e.cause instanceof Error ? { name: e.cause.name, message: e.cause.message, code: e.cause.code } : e.cause;
  }
  return out;
}

export class RelyingParty {
  /** `scope`: what /login asks for (default SCOPE). */
  constructor({ scope } = {}) {
    this.scope = scope;
    this.sessions = new Map();
    this.requests = []; // every request path, in order
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        res.writeHead(500, { 'content-type': 'text/html; charset=utf-8' });
        res.end(page('RP error', `<pre id="error">${esc(JSON.stringify(describeError(e), null, 2))}</pre>`));
      });
    });
  }

  async listen() {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = this.server.address().port;
    this.origin = `http://127.0.0.1:${this.port}`;
    // Cookies do not separate ports, and Sesame lives on 127.0.0.1 too: a name of our own.
    this.cookieName = `rp_sid_${this.port}`;
    return this;
  }

  get redirectUri() {
    return `${this.origin}/callback`;
  }

  get postLogoutRedirectUri() {
    return `${this.origin}/logged-out`;
  }

  /** Discovery against the issuer; the client authenticates with client_secret_basic. */
  async configure({ issuer, clientId, clientSecret }) {
    this.config = await oidc.discovery(
      new URL(issuer),
      clientId,
      { redirect_uris: [this.redirectUri], response_types: ['code'] },
      oidc.ClientSecretBasic(clientSecret),
      // The test server speaks plain HTTP on loopback.
      { execute: [oidc.allowInsecureRequests], timeout: 10 },
    );
    return this.config;
  }

  async close() {
    this.server.closeAllConnections?.();
    this.server.close();
  }

  sessionOf(sid) {
    return this.sessions.get(sid);
  }

  session(req, res) {
    const cookies = Object.fromEntries(
      (req.headers.cookie ?? '')
        .split(';')
        .map((c) => c.trim().split('='))
        .filter((kv) => kv.length === 2),
    );
    let sid = cookies[this.cookieName];
    if (!sid || !this.sessions.has(sid)) {
      sid = randomBytes(16).toString('hex');
      this.sessions.set(sid, { sid, events: [], refreshes: [] });
      res.setHeader('set-cookie', `${this.cookieName}=${sid}; Path=/; HttpOnly; SameSite=Lax`);
    }
    return this.sessions.get(sid);
  }

  send(res, status, title, body) {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(page(title, body));
  }

  redirect(res, location) {
    res.writeHead(302, { location: String(location), 'cache-control': 'no-store' });
    res.end();
  }

  async handle(req, res) {
    const url = new URL(req.url, this.origin);
    this.requests.push(url.pathname);
    if (req.method !== 'GET') return this.send(res, 405, 'Method not allowed', '');
    const s = this.session(req, res);
    s.events.push(url.pathname);
    switch (url.pathname) {
      case '/':
        return this.send(
          res,
          200,
          'Relying party',
          s.claims
            ? `<p id="who">Signed in as ${esc(s.claims.email ?? s.claims.sub)}</p>`
            : `<p id="who">Not signed in</p><a id="login" href="/login">Sign in</a>`,
        );

      case '/login': {
        s.codeVerifier = oidc.randomPKCECodeVerifier();
        s.state = oidc.randomState();
        s.nonce = oidc.randomNonce();
        s.loginStartedAt = Math.floor(Date.now() / 1000);
        const authUrl = oidc.buildAuthorizationUrl(this.config, {
          redirect_uri: this.redirectUri,
          scope: this.scope ?? SCOPE,
          code_challenge: await oidc.calculatePKCECodeChallenge(s.codeVerifier),
          code_challenge_method: 'S256',
          state: s.state,
          nonce: s.nonce,
        });
        s.authorizationUrl = authUrl.href;
        return this.redirect(res, authUrl);
      }

      case '/callback': {
        s.callbackUrl = url.href;
        try {
          // Checks state, exchanges the code with the PKCE verifier, and validates the ID token
          // (signature via the JWKS, iss, aud, exp, iat, nonce).
          const tokens = await oidc.authorizationCodeGrant(this.config, url, {
            pkceCodeVerifier: s.codeVerifier,
            expectedState: s.state,
            expectedNonce: s.nonce,
            idTokenExpected: true,
          });
          s.tokens = tokens;
          s.claims = tokens.claims();
          // Checks that userinfo's sub is the ID token's.
          s.userinfo = await oidc.fetchUserInfo(this.config, tokens.access_token, s.claims.sub);
        } catch (e) {
          s.error = describeError(e);
          return this.send(res, 400, 'Sign-in failed', `<pre id="error">${esc(JSON.stringify(s.error, null, 2))}</pre>`);
        }
        return this.send(
          res,
          200,
          'Signed in',
          `<p id="who">Signed in as ${esc(s.claims.email ?? s.claims.sub)}</p>
<h2>ID token claims</h2><pre id="claims">${esc(JSON.stringify(s.claims, null, 2))}</pre>
<h2>Userinfo</h2><pre id="userinfo">${esc(JSON.stringify(s.userinfo, null, 2))}</pre>
<p><a id="refresh" href="/refresh">Refresh</a> <a id="logout" href="/logout">Sign out</a></p>`,
        );
      }

      case '/refresh': {
        const current = s.refreshes.at(-1)?.tokens ?? s.tokens;
        if (!current?.refresh_token) return this.send(res, 400, 'No refresh token', '');
        try {
          const tokens = await oidc.refreshTokenGrant(this.config, current.refresh_token);
          s.refreshes.push({ used: current.refresh_token, tokens });
        } catch (e) {
          s.error = describeError(e);
          return this.send(res, 400, 'Refresh failed', `<pre id="error">${esc(JSON.stringify(s.error, null, 2))}</pre>`);
        }
        const t = s.refreshes.at(-1).tokens;
        return this.send(
          res,
          200,
          'Refreshed',
          `<pre id="tokens">${esc(
            JSON.stringify(
              { token_type: t.token_type, expires_in: t.expires_in, scope: t.scope, has_refresh_token: !!t.refresh_token, has_id_token: !!t.id_token },
              null,
              2,
            ),
          )}</pre>`,
        );
      }

      case '/logout': {
        const idToken = s.tokens?.id_token;
        if (!idToken) return this.send(res, 400, 'Not signed in', '');
        s.logoutState = oidc.randomState();
        const endSession = oidc.buildEndSessionUrl(this.config, {
          id_token_hint: idToken,
          post_logout_redirect_uri: this.postLogoutRedirectUri,
          state: s.logoutState,
        });
        s.endSessionUrl = endSession.href;
        return this.redirect(res, endSession);
      }

      case '/logged-out': {
        s.loggedOutState = url.searchParams.get('state');
        if (!s.logoutState || s.loggedOutState !== s.logoutState) {
          return this.send(
            res,
            400,
            'Logout state mismatch',
            `<p id="error">expected state ${esc(s.logoutState)}, got ${esc(s.loggedOutState)}</p>`,
          );
        }
        s.loggedOut = true;
        delete s.claims;
        return this.send(res, 200, 'Signed out', '<p id="who">Signed out</p><a id="login" href="/login">Sign in again</a>');
      }

      default:
        return this.send(res, 404, 'Not found', '');
    }
  }
}
