// An upstream OpenID Connect IdP for the brokered-SSO browser test: Node `oidc-provider` (panva)
// on a loopback port, with its development login and consent pages (any password is accepted
// for a known account), one client (Sesame's connection) and accounts whose claims the test can
// change between sign-ins (`groups`, `email_verified`).

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import Provider from 'oidc-provider';

export class UpstreamIdp {
  constructor() {
    /** accountId -> claims (sub is the accountId). */
    this.accounts = new Map();
    this.clientId = 'sesame-broker';
    this.clientSecret = randomBytes(24).toString('base64url');
  }

  addAccount(id, claims) {
    this.accounts.set(id, { sub: id, ...claims });
  }

  /** Starts on 127.0.0.1 with a client whose only redirect URI is `redirectUri`. */
  async start({ redirectUri }) {
    this.server = http.createServer();
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.issuer = `http://127.0.0.1:${this.server.address().port}`;
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'upstream-1', alg: 'RS256', use: 'sig' };
    const accounts = this.accounts;
    this.provider = new Provider(this.issuer, {
      clients: [
        {
          client_id: this.clientId,
          client_secret: this.clientSecret,
          redirect_uris: [redirectUri],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      jwks: { keys: [jwk] },
      scopes: ['openid', 'email', 'profile', 'groups'],
      claims: {
        openid: ['sub'],
        email: ['email', 'email_verified'],
        profile: ['name'],
        groups: ['groups'],
      },
      async findAccount(_ctx, id) {
        const claims = accounts.get(id);
        if (!claims) return undefined;
        return { accountId: id, claims: async () => ({ ...claims }) };
      },
      // The development interaction pages: a login form (login + password) and a consent
      // form ("Continue"). Only for tests.
      features: { devInteractions: { enabled: true } },
      cookies: { keys: [randomBytes(32).toString('hex')] },
      pkce: { required: () => true },
    });
    // The dev login accepts any password for a known account; an unknown login is refused.
    this.provider.on('server_error', (_ctx, err) => console.error('[oidc-provider]', err));
    this.server.on('request', this.provider.callback());
    return this;
  }

  async close() {
    this.server?.closeAllConnections?.();
    this.server?.close();
  }
}
