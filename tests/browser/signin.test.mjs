// Browser sign-in, end to end: headless Chromium, a relying party built on openid-client, and a
// real `sesamed serve --dev`. Run with tests/browser/run.sh (or `node --test` in this folder with
// SESAMED_BIN set).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { launchChromium, Steps } from './lib/browser.mjs';
import { describeError, RelyingParty, SCOPE } from './lib/rp.mjs';
import { startSesame } from './lib/sesame.mjs';

const TEST_TIMEOUT_MS = 120_000;
const PAGE_TIMEOUT_MS = 15_000;

const ALICE = { username: 'alice', password: 'correct horse battery staple', email: 'alice@example.com', email_verified: true, name: 'Alice Example' };
const BOB = { username: 'bob', password: 'bob-has-a-long-password', email: 'bob@example.com', email_verified: true, name: 'Bob Example' };

let sesame;
let browser;
const rps = [];
let failed = false;

/** A relying party on its own port with a client of its own in tenant `default`. */
async function newRelyingParty(extra = {}) {
  const rp = await new RelyingParty().listen();
  rps.push(rp);
  rp.clientName = `Browser test RP ${rp.port}`;
  const { clientId, clientSecret, client } = await sesame.createClient({
    name: rp.clientName,
    client_type: 'confidential',
    redirect_uris: [rp.redirectUri],
    post_logout_redirect_uris: [rp.postLogoutRedirectUri],
    allowed_scopes: ['openid', 'profile', 'email', 'offline_access'],
    grant_types: ['authorization_code', 'refresh_token'],
    ...extra,
  });
  assert.ok(clientSecret, `a confidential client gets a secret: ${JSON.stringify(client)}`);
  await rp.configure({ issuer: sesame.issuer(), clientId, clientSecret });
  const meta = rp.config.serverMetadata();
  assert.ok(meta.authorization_endpoint, 'discovery advertises an authorization_endpoint');
  assert.ok(meta.end_session_endpoint, 'discovery advertises an end_session_endpoint');
  return rp;
}

/** A fresh browser profile (no cookies) with one page, and steps that screenshot on failure. */
async function newPage(t) {
  const context = await browser.newContext();
  context.setDefaultTimeout(PAGE_TIMEOUT_MS);
  const page = await context.newPage();
  const steps = new Steps(t.name, page, {
    context: () => `sesamed stderr (tail):\n${sesame.stderrTail(3000)}`,
  });
  t.after(() => context.close());
  return { context, page, steps };
}

async function rpSession(context, rp) {
  const cookie = (await context.cookies(rp.origin)).find((c) => c.name === rp.cookieName);
  assert.ok(cookie, `the browser has the RP's cookie ${rp.cookieName}`);
  const s = rp.sessionOf(cookie.value);
  assert.ok(s, 'the RP knows the session');
  return s;
}

const onSesame = (page) => page.url().startsWith(`${sesame.issuer()}/`);

/** Sesame's login page: a form with username, password, the hidden CSRF token, a submit button. */
async function expectLoginPage(page) {
  assert.ok(onSesame(page), `expected Sesame's login page, at ${page.url()}`);
  const form = loginForm(page);
  await form.waitFor({ state: 'visible' });
  await form.locator('input[name="username"]').waitFor({ state: 'visible' });
  assert.equal(await form.locator('input[name="csrf"]').count(), 1, 'the login form has a CSRF token');
}

function loginForm(page) {
  return page.locator('form', { has: page.locator('input[name="password"]') });
}

async function submitLogin(page, { username, password }) {
  const form = loginForm(page);
  await form.locator('input[name="username"]').fill(username);
  await form.locator('input[name="password"]').fill(password);
  await form.locator('button[type="submit"], input[type="submit"], button:not([type])').first().click();
}

/** Records the documents the page commits to from now on (redirect hops are not committed). */
function recordNavigations(page) {
  const urls = [];
  const onNav = (frame) => frame === page.mainFrame() && urls.push(frame.url());
  page.on('framenavigated', onNav);
  return { urls, stop: () => page.off('framenavigated', onNav) };
}

async function expectSignedInPage(page, rp, who) {
  await page.waitForURL((u) => u.href.startsWith(`${rp.redirectUri}?`));
  const error = page.locator('#error');
  if (await error.count()) assert.fail(`the RP refused the sign-in: ${await error.textContent()}`);
  assert.equal(await page.locator('#who').textContent(), `Signed in as ${who}`);
}

/** A test that marks the run as failed (to keep sesamed's data dir and logs) when it throws. */
function scenario(name, fn) {
  test(name, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

describe('browser sign-in', () => {
  before(async () => {
    sesame = await startSesame();
    browser = await launchChromium();
    await sesame.createUser(ALICE);
    await sesame.createUser(BOB);
  });

  after(async () => {
    for (const rp of rps) await rp.close();
    await browser?.close();
    if (!sesame) return;
    const exit = await sesame.stop();
    const clean = !exit.killed && exit.code === 0;
    if (failed || !clean) console.error(`[browser test] sesamed data dir and logs kept in ${sesame.dataDir}`);
    else fs.rmSync(sesame.dataDir, { recursive: true, force: true });
    if (!clean) {
      assert.fail(
        `sesamed exited with ${JSON.stringify(exit)} after SIGTERM (graceful shutdown must exit 0); ` +
          `stderr:\n${sesame.stderrTail()}`,
      );
    }
  });

  scenario(
    'code flow with consent: ID token, userinfo, refresh rotation, logout',
    async (t) => {
      const rp = await newRelyingParty();
      const { context, page, steps } = await newPage(t);
      const startedAt = Math.floor(Date.now() / 1000);
      const sessionsBefore = (await sesame.userSessions(ALICE.username)).length;

      await steps.step('RP /login sends the browser to the login page', async () => {
        await page.goto(`${rp.origin}/login`);
        await expectLoginPage(page);
        const s = await rpSession(context, rp);
        const authUrl = new URL(s.authorizationUrl);
        assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
        assert.equal(authUrl.searchParams.get('scope'), SCOPE);
      });

      await steps.step('the login form leads to the consent page', async () => {
        await submitLogin(page, ALICE);
        await page.locator('button[name="decision"][value="allow"]').waitFor({ state: 'visible' });
        assert.ok(onSesame(page), `the consent page is Sesame's: ${page.url()}`);
        assert.equal(await page.locator('button[name="decision"][value="deny"]').count(), 1, 'consent offers deny');
        const text = await page.locator('body').innerText();
        assert.ok(text.includes(rp.clientName), `the consent page names the client: ${text}`);
      });

      await steps.step('allowing consent lands back on the RP, signed in', async () => {
        await page.locator('button[name="decision"][value="allow"]').click();
        await expectSignedInPage(page, rp, ALICE.email);
        const sessions = await sesame.userSessions(ALICE.username);
        assert.equal(sessions.length, sessionsBefore + 1, `one new Sesame session: ${JSON.stringify(sessions)}`);
      });

      const s = await rpSession(context, rp);
      const claims = s.claims;

      await steps.step('the ID token carries the user', async () => {
        // openid-client has already checked the signature (JWKS), iss, aud, exp, iat and nonce.
        assert.equal(claims.iss, sesame.issuer());
        assert.equal(typeof claims.sub, 'string');
        assert.ok(claims.sub.length > 0, 'sub is not empty');
        assert.notEqual(claims.sub, ALICE.username, 'sub is not the (changeable) username');
        assert.equal(claims.nonce, s.nonce);
        assert.equal(claims.email, ALICE.email);
        assert.equal(claims.name, ALICE.name);
        assert.equal(typeof claims.auth_time, 'number', `auth_time is a number: ${JSON.stringify(claims)}`);
        const now = Math.floor(Date.now() / 1000);
        assert.ok(
          claims.auth_time >= startedAt - 5 && claims.auth_time <= now + 5,
          `auth_time ${claims.auth_time} is the sign-in just now (${startedAt}..${now})`,
        );
        assert.ok(s.tokens.access_token, 'an access token');
        assert.ok(s.tokens.refresh_token, 'a refresh token (offline_access was granted)');
        assert.match(s.tokens.token_type, /^bearer$/i);
      });

      await steps.step('userinfo is the same user', async () => {
        assert.equal(s.userinfo.sub, claims.sub);
        assert.equal(s.userinfo.email, ALICE.email);
        assert.equal(s.userinfo.name, ALICE.name);
      });

      const firstRefresh = s.tokens.refresh_token;

      await steps.step('RP /refresh gets a new access token and a new refresh token', async () => {
        const resp = await page.goto(`${rp.origin}/refresh`);
        assert.equal(resp.status(), 200, `refresh failed: ${JSON.stringify(s.error)}`);
        assert.equal(s.refreshes.length, 1);
        const { used, tokens } = s.refreshes[0];
        assert.equal(used, firstRefresh);
        assert.ok(tokens.access_token, 'an access token');
        assert.notEqual(tokens.access_token, s.tokens.access_token, 'a new access token');
        assert.ok(tokens.refresh_token, 'a refresh token (rotation)');
        assert.notEqual(tokens.refresh_token, firstRefresh, 'a new refresh token (rotation)');
        if (tokens.id_token) assert.equal(tokens.claims().sub, claims.sub);
      });

      // Sesame answers a replay of a just-rotated refresh token with the answer it already gave
      // for REFRESH_REUSE_GRACE (30 s, crates/sesame-core/src/token.rs), for a client whose
      // answer was lost; only a later replay is refused, and revokes the grant.
      const rotatedBy = Date.now();

      await steps.step('a replay of the used refresh token at once gets the same answer, not new tokens', async () => {
        const successor = s.refreshes[0].tokens;
        const replay = await oidc.refreshTokenGrant(rp.config, firstRefresh);
        assert.equal(replay.refresh_token, successor.refresh_token, 'the same successor refresh token');
        assert.equal(replay.access_token, successor.access_token, 'the same access token');
      });
      await steps.step('RP /logout returns to /logged-out with the same state', async () => {
        const nav = recordNavigations(page);
        await page.goto(`${rp.origin}/logout`);
        await page.waitForURL((u) => u.href.startsWith(`${rp.postLogoutRedirectUri}?`));
        nav.stop();
        assert.ok(s.endSessionUrl.startsWith(rp.config.serverMetadata().end_session_endpoint));
        assert.ok(s.logoutState, 'the RP sent a state');
        assert.equal(s.loggedOutState, s.logoutState);
        assert.equal(await page.locator('#who').textContent(), 'Signed out');
        const stops = nav.urls.filter((u) => !u.startsWith(rp.origin));
        assert.deepEqual(stops, [], 'logout with id_token_hint redirects straight back');
        const sessions = await sesame.userSessions(ALICE.username);
        assert.equal(sessions.length, sessionsBefore, `the Sesame session has ended: ${JSON.stringify(sessions)}`);
      });

      await steps.step('after logout, RP /login shows the login page again', async () => {
        await page.goto(`${rp.origin}/login`);
        await expectLoginPage(page);
      });

      await steps.step('after the grace period the used refresh token is refused and its grant revoked', async () => {
        // Whole seconds on the server: 32 s after the rotation's answer is surely more than 30.
        const wait = rotatedBy + 32_000 - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const refused = (what) => (e) => {
          assert.equal(e.error, 'invalid_grant', `${what}: expected invalid_grant: ${JSON.stringify(describeError(e))}`);
          return true;
        };
        await assert.rejects(oidc.refreshTokenGrant(rp.config, firstRefresh), refused('the used refresh token'));
        const successor = s.refreshes[0].tokens.refresh_token;
        await assert.rejects(oidc.refreshTokenGrant(rp.config, successor), refused('its successor, after the replay'));
      });
    },
  );

  scenario('a first-party client skips consent', async (t) => {
    const rp = await newRelyingParty({ first_party: true });
    const { context, page, steps } = await newPage(t);

    await steps.step('RP /login sends the browser to the login page', async () => {
      await page.goto(`${rp.origin}/login`);
      await expectLoginPage(page);
    });

    await steps.step('signing in lands on the RP without a consent page', async () => {
      const nav = recordNavigations(page);
      await submitLogin(page, ALICE);
      await expectSignedInPage(page, rp, ALICE.email);
      nav.stop();
      const stops = nav.urls.filter((u) => !u.startsWith(rp.origin));
      assert.deepEqual(stops, [], 'no page of Sesame between the login form and the RP');
    });

    await steps.step('the ID token and userinfo carry the user', async () => {
      const s = await rpSession(context, rp);
      assert.equal(s.claims.email, ALICE.email);
      assert.equal(s.claims.name, ALICE.name);
      assert.equal(s.claims.nonce, s.nonce);
      assert.equal(s.userinfo.sub, s.claims.sub);
    });
  });

  scenario('a wrong password shows an error and does not sign in', async (t) => {
    // First party, so that the right password afterwards lands straight on the RP.
    const rp = await newRelyingParty({ first_party: true });
    const { context, page, steps } = await newPage(t);

    await steps.step('RP /login sends the browser to the login page', async () => {
      await page.goto(`${rp.origin}/login`);
      await expectLoginPage(page);
    });

    // One wrong password only: sign-in is rate limited.
    await steps.step('a wrong password shows the login page again with an error', async () => {
      const loaded = page.waitForEvent('load');
      await submitLogin(page, { username: BOB.username, password: 'not-bobs-password' });
      await loaded;
      await expectLoginPage(page);
      const error = page.locator('#login-error[role="alert"]');
      await error.waitFor({ state: 'visible' });
      const text = (await error.textContent()).trim();
      assert.match(text, /password|invalid|incorrect|wrong/i, `error message: ${text}`);
      const form = loginForm(page);
      assert.equal(await form.locator('input[name="username"]').inputValue(), BOB.username, 'the username is kept');
      assert.equal(await form.locator('input[name="password"]').inputValue(), '', 'the password is not echoed back');
    });

    await steps.step('the RP got no callback and has no sign-in', async () => {
      assert.ok(!rp.requests.includes('/callback'), `RP requests: ${rp.requests.join(' ')}`);
      const s = await rpSession(context, rp);
      assert.equal(s.claims, undefined);
    });

    await steps.step('the right password then signs in', async () => {
      await submitLogin(page, BOB);
      await expectSignedInPage(page, rp, BOB.email);
    });
  });
});
