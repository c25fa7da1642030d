// Brokered SSO in a real browser: headless Chromium signs in to an openid-client relying party
// of Sesame's tenant `default` through the SSO button of Sesame's sign-in page, at an upstream
// IdP that is Node's `oidc-provider` (another implementation than Sesame's, with its own login
// and consent pages). The upstream person carries `groups` and `email_verified`; the connection
// makes members of `admins` tenant admins.
//
//   first sign-in   creates the user; `groups` reaches the RP's ID token; admin by SSO (admin API)
//   second sign-in  links to the same user (same `sub`)
//   third sign-in   after the person left `admins` at the IdP: the admin flag is gone

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { launchChromium, Steps } from './lib/browser.mjs';
import { UpstreamIdp } from './lib/oidc-idp.mjs';
import { RelyingParty } from './lib/rp.mjs';
import { startSesame } from './lib/sesame.mjs';

const TEST_TIMEOUT_MS = 180_000;
const PAGE_TIMEOUT_MS = 20_000;
const CONNECTION = 'corp';
const SCOPE = 'openid profile email groups';

let sesame;
let browser;
let idp;
let rp;
let failed = false;

const onSesame = (page) => page.url().startsWith(`${sesame.issuer()}/`);
const onIdp = (page) => page.url().startsWith(`${idp.issuer}/`);

async function rpSession(context) {
  const cookie = (await context.cookies(rp.origin)).find((c) => c.name === rp.cookieName);
  assert.ok(cookie, `the browser has the RP's cookie ${rp.cookieName}`);
  return rp.sessionOf(cookie.value);
}

/**
 * One sign-in in a fresh browser profile, through every page: the RP, Sesame's sign-in page and
 * its SSO button, the IdP's login and consent, Sesame's consent (only the first time: it is
 * remembered), and back to the RP. Returns the ID token's claims as the RP checked them.
 */
async function signInThroughIdp(t, label, { expectSesameConsent }) {
  const context = await browser.newContext();
  context.setDefaultTimeout(PAGE_TIMEOUT_MS);
  // Loopback only: the IdP's development pages import a web font, which must not be fetched.
  await context.route(
    (url) => !['127.0.0.1', 'localhost'].includes(url.hostname),
    (route) => route.abort(),
  );
  const page = await context.newPage();
  t.after(() => context.close());
  const steps = new Steps(`${t.name} ${label}`, page, {
    context: () => `sesamed stderr (tail):\n${sesame.stderrTail(3000)}`,
  });

  await steps.step('the RP sends the browser to Sesame, which offers the SSO button', async () => {
    await page.goto(`${rp.origin}/login`);
    const button = page.locator(`a[href*="/sso/${CONNECTION}/start?"]`);
    await button.waitFor({ state: 'visible' });
    assert.ok(onSesame(page), `Sesame's sign-in page: ${page.url()}`);
    assert.match(await button.innerText(), /Acme Corp/);
  });

  await steps.step('the button leads to the IdP login page', async () => {
    await page.locator(`a[href*="/sso/${CONNECTION}/start?"]`).click();
    await page.locator('input[name="login"]').waitFor({ state: 'visible' });
    assert.ok(onIdp(page), `the IdP's login page: ${page.url()}`);
  });

  await steps.step('signing in at the IdP asks for its consent', async () => {
    await page.locator('input[name="login"]').fill('alice');
    await page.locator('input[name="password"]').fill('any password at the dev IdP');
    await page.locator('button[type="submit"]').click();
    await page.locator('button', { hasText: 'Continue' }).waitFor({ state: 'visible' });
    assert.ok(onIdp(page), `the IdP's consent page: ${page.url()}`);
  });

  await steps.step('the IdP consent returns to Sesame', async () => {
    await page.locator('button', { hasText: 'Continue' }).click();
    if (expectSesameConsent) {
      const allow = page.locator('button[name="decision"][value="allow"]');
      await allow.waitFor({ state: 'visible' });
      assert.ok(onSesame(page), `Sesame's consent page: ${page.url()}`);
      assert.ok((await page.locator('body').innerText()).includes(rp.clientName));
      await allow.click();
    }
    await page.waitForURL((u) => u.href.startsWith(`${rp.redirectUri}?`));
    const error = page.locator('#error');
    if (await error.count()) assert.fail(`the RP refused the sign-in: ${await error.textContent()}`);
  });

  const s = await rpSession(context);
  assert.ok(s?.claims, 'the RP has the ID token claims');
  return s;
}

async function ssoInfo(sub) {
  return sesame.adminOk('GET', `/tenants/default/users/${sub}/sso`, undefined, 200);
}

describe('brokered SSO with oidc-provider upstream', () => {
  before(async () => {
    sesame = await startSesame();
    browser = await launchChromium();
    idp = new UpstreamIdp();
    idp.addAccount('alice', {
      email: 'alice@corp.example',
      email_verified: true,
      name: 'Alice Upstream',
      groups: ['admins', 'staff'],
    });
    await idp.start({ redirectUri: `${sesame.issuer()}/sso/${CONNECTION}/callback` });
    await sesame.adminOk(
      'POST',
      '/tenants/default/sso',
      {
        id: CONNECTION,
        display_name: 'Acme Corp',
        issuer: idp.issuer,
        client_id: idp.clientId,
        client_secret: idp.clientSecret,
        scopes: ['openid', 'email', 'profile', 'groups'],
        groups_claim: 'groups',
        admin_groups: ['admins'],
      },
      201,
    );
    rp = await new RelyingParty({ scope: SCOPE }).listen();
    rp.clientName = `SSO browser test RP ${rp.port}`;
    const { clientId, clientSecret } = await sesame.createClient({
      name: rp.clientName,
      client_type: 'confidential',
      redirect_uris: [rp.redirectUri],
      allowed_scopes: ['openid', 'profile', 'email', 'groups'],
      grant_types: ['authorization_code', 'refresh_token'],
    });
    await rp.configure({ issuer: sesame.issuer(), clientId, clientSecret });
  });

  after(async () => {
    await rp?.close();
    await idp?.close();
    await browser?.close();
    if (!sesame) return;
    const exit = await sesame.stop();
    const clean = !exit.killed && exit.code === 0;
    if (failed || !clean) console.error(`[browser test] sesamed data dir and logs kept in ${sesame.dataDir}`);
    else fs.rmSync(sesame.dataDir, { recursive: true, force: true });
    assert.ok(clean, `sesamed exited with ${JSON.stringify(exit)} after SIGTERM`);
  });

  test('sign-in creates, links, and follows the IdP groups', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    try {
      const first = await signInThroughIdp(t, 'first', { expectSesameConsent: true });
      const sub = first.claims.sub;
      // openid-client checked the ID token (signature, iss, aud, nonce) before this.
      assert.equal(first.claims.iss, sesame.issuer());
      assert.deepEqual(first.claims.amr, ['fed']);
      assert.deepEqual([...first.claims.groups].sort(), ['admins', 'staff']);
      assert.equal(first.claims.email, 'alice@corp.example');
      assert.equal(first.claims.email_verified, true);
      let info = await ssoInfo(sub);
      assert.equal(info.admin_by_sso, true, `admin through the admins group: ${JSON.stringify(info)}`);
      const user = await sesame.adminOk('GET', `/tenants/default/users/${sub}`, undefined, 200);
      assert.equal(user.username, 'alice@corp.example', JSON.stringify(user));
      assert.equal(user.name, 'Alice Upstream');

      const second = await signInThroughIdp(t, 'second', { expectSesameConsent: false });
      assert.equal(second.claims.sub, sub, 'the second sign-in links to the same user');
      const users = await sesame.adminOk('GET', '/tenants/default/users', undefined, 200);
      assert.equal(
        JSON.stringify(users).split('alice@corp.example').length - 1,
        2,
        `one user (username and email): ${JSON.stringify(users)}`,
      );

      // The person leaves the admin group at the IdP.
      idp.addAccount('alice', {
        email: 'alice@corp.example',
        email_verified: true,
        name: 'Alice Upstream',
        groups: ['staff'],
      });
      const third = await signInThroughIdp(t, 'third', { expectSesameConsent: false });
      assert.equal(third.claims.sub, sub);
      assert.deepEqual(third.claims.groups, ['staff']);
      info = await ssoInfo(sub);
      assert.equal(info.admin_by_sso, false, `no longer admin: ${JSON.stringify(info)}`);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
});
