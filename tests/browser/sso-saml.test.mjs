// SAML 2.0 brokered SSO in a real browser: headless Chromium signs in to an openid-client relying
// party of Sesame's tenant `default` through the SAML button of Sesame's sign-in page, at an IdP
// that is pysaml2 (lib/saml_idp.py: pysaml2's Server, signing with the xmlsec1 binary, behind a
// login form). The connection is created through the admin API from the IdP's metadata URL, and
// pysaml2 learns Sesame from Sesame's SP metadata, so it verifies every signed AuthnRequest.
//
// The browser reaches the IdP as http://localhost:<port> and Sesame as http://127.0.0.1:<port>:
// two sites, so the IdP's auto-submitted POST to the ACS is cross-site, and Chromium leaves out
// Sesame's SameSite=Lax `sesame_sso` cookie. The ACS then posts the same form again from its own
// origin (`resubmitted=1`), which carries the cookie. The test watches both POSTs.
//
//   first sign-in   creates the user; `groups` reaches the RP's ID token; admin by SSO (admin API)
//   second sign-in  links to the same user (same `sub`), still admin
//   third sign-in   after the person left `admins` at the IdP: the admin flag is gone
//   a replayed Response, posted to the ACS by a browser that did not start the sign-in: refused

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { launchChromium, Steps } from './lib/browser.mjs';
import { RelyingParty } from './lib/rp.mjs';
import { SamlIdp } from './lib/saml-idp.mjs';
import { startSesame } from './lib/sesame.mjs';

const TEST_TIMEOUT_MS = 180_000;
const PAGE_TIMEOUT_MS = 20_000;
const CONNECTION = 'pysaml';
const SCOPE = 'openid profile email groups';
const SSO_COOKIE = 'sesame_sso';
const ALICE = {
  password: 'correct horse battery staple',
  name_id: 'pysaml-alice-01',
  attributes: {
    mail: ['alice@pysaml.test'],
    displayName: ['Alice Liddell'],
    eduPersonAffiliation: ['admins', 'staff'],
  },
};

let sesame;
let browser;
let idp;
let rp;
let acsUrl;
let failed = false;

const onSesame = (page) => page.url().startsWith(`${sesame.issuer()}/`);
const onIdp = (page) => page.url().startsWith(`${idp.base}/`);

async function newContext(t) {
  const context = await browser.newContext();
  context.setDefaultTimeout(PAGE_TIMEOUT_MS);
  // Loopback only: nothing leaves the machine.
  await context.route(
    (url) => !['127.0.0.1', 'localhost'].includes(url.hostname),
    (route) => route.abort(),
  );
  t.after(() => context.close());
  return context;
}

/** Every POST the page makes to the ACS: its form fields and the cookies it carried. */
function watchAcs(page) {
  const posts = [];
  page.on('request', (req) => {
    if (req.method() !== 'POST' || req.url() !== acsUrl) return;
    posts.push({
      fields: new URLSearchParams(req.postData() ?? ''),
      // allHeaders: what went on the wire, the Cookie header included.
      headers: req.allHeaders(),
    });
  });
  return posts;
}

const hasSsoCookie = (headers) => (headers.cookie ?? '').split(/;\s*/).some((c) => c.startsWith(`${SSO_COOKIE}=`));

async function rpSession(context) {
  const cookie = (await context.cookies(rp.origin)).find((c) => c.name === rp.cookieName);
  assert.ok(cookie, `the browser has the RP's cookie ${rp.cookieName}`);
  return rp.sessionOf(cookie.value);
}

/**
 * One sign-in in a fresh browser profile, through every page: the RP, Sesame's sign-in page and
 * its SAML button, the IdP's login form, the IdP's auto-submitted POST to the ACS (and Sesame's
 * re-post), Sesame's consent (only the first time: it is remembered), and back to the RP.
 * Returns the RP's session (the ID token's claims as openid-client checked them) and the ACS POSTs.
 */
async function signInThroughIdp(t, label, { expectSesameConsent }) {
  const context = await newContext(t);
  const page = await context.newPage();
  const acsPosts = watchAcs(page);
  // A CSP refusal (e.g. a form-action that holds a redirect) shows only on the console.
  const consoleErrors = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  const steps = new Steps(`${t.name} ${label}`, page, {
    context: () =>
      `browser console errors: ${JSON.stringify(consoleErrors)}\n` +
      `sesamed stderr (tail):\n${sesame.stderrTail(3000)}\nsaml_idp stderr (tail):\n${idp.stderr}`,
  });

  await steps.step('the RP sends the browser to Sesame, which offers the SAML button', async () => {
    await page.goto(`${rp.origin}/login`);
    const button = page.locator(`a[href*="/sso/${CONNECTION}/start?"]`);
    await button.waitFor({ state: 'visible' });
    assert.ok(onSesame(page), `Sesame's sign-in page: ${page.url()}`);
    assert.match(await button.innerText(), /PySAML Corp/);
  });

  await steps.step('the button leads to the IdP login form, past pysaml2 checking the AuthnRequest', async () => {
    await page.locator(`a[href*="/sso/${CONNECTION}/start?"]`).click();
    await page.locator('input[name="username"]').waitFor({ state: 'visible' });
    assert.ok(page.url().startsWith(`${idp.sso_url}?`), `the IdP's login page: ${page.url()}`);
    const q = new URL(page.url()).searchParams;
    assert.equal(q.get('SigAlg'), 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    assert.ok(q.get('Signature') && q.get('RelayState'), 'a signed request with RelayState');
    assert.equal(
      await page.locator('#sp').innerText(),
      `Signing in to ${sesame.issuer()}/sso/${CONNECTION}/saml/metadata`,
    );
  });

  await steps.step('signing in at the IdP posts the assertion to the ACS and returns to the RP', async () => {
    // The page navigates several times on its own (the IdP's auto-submit, Sesame's re-post), so
    // wait for the RP's callback itself rather than for a URL (an interrupted navigation aborts).
    const atRp = () =>
      page.waitForResponse((r) => r.url().startsWith(`${rp.redirectUri}?`) && r.request().isNavigationRequest());
    await page.locator('input[name="username"]').fill('alice');
    await page.locator('input[name="password"]').fill(ALICE.password);
    let arrived = expectSesameConsent ? undefined : atRp();
    await page.locator('button[type="submit"]').click();
    if (expectSesameConsent) {
      const allow = page.locator('button[name="decision"][value="allow"]');
      await allow.waitFor({ state: 'visible' });
      assert.ok(onSesame(page), `Sesame's consent page: ${page.url()}`);
      assert.ok((await page.locator('body').innerText()).includes(rp.clientName));
      arrived = atRp();
      await allow.click();
    }
    await arrived;
    await page.waitForLoadState();
    assert.ok(page.url().startsWith(`${rp.redirectUri}?`), `back at the RP: ${page.url()}`);
    const error = page.locator('#error');
    if (await error.count()) assert.fail(`the RP refused the sign-in: ${await error.textContent()}`);
  });

  await steps.step('the cross-site POST lacked the SameSite=Lax cookie; the re-post carried it', async () => {
    assert.equal(acsPosts.length, 2, `two POSTs to the ACS, got ${acsPosts.length}`);
    const [fromIdp, again] = acsPosts;
    const [fromIdpHeaders, againHeaders] = await Promise.all([fromIdp.headers, again.headers]);
    assert.ok(fromIdp.fields.get('SAMLResponse'), 'the IdP posted a SAMLResponse');
    assert.equal(fromIdp.fields.get('resubmitted'), null);
    assert.equal(hasSsoCookie(fromIdpHeaders), false, `no ${SSO_COOKIE} on the cross-site POST`);
    assert.equal(again.fields.get('resubmitted'), '1');
    assert.equal(again.fields.get('SAMLResponse'), fromIdp.fields.get('SAMLResponse'));
    assert.equal(again.fields.get('RelayState'), fromIdp.fields.get('RelayState'));
    assert.ok(hasSsoCookie(againHeaders), `${SSO_COOKIE} on Sesame's own re-post`);
  });

  const s = await rpSession(context);
  assert.ok(s?.claims, 'the RP has the ID token claims');
  return { session: s, response: Object.fromEntries(acsPosts[0].fields) };
}

async function ssoInfo(sub) {
  return sesame.adminOk('GET', `/tenants/default/users/${sub}/sso`, undefined, 200);
}

describe('brokered SSO with a pysaml2 SAML IdP', () => {
  before(async () => {
    sesame = await startSesame();
    browser = await launchChromium();
    idp = await new SamlIdp().start({ publicHost: 'localhost' });
    await idp.setPerson('alice', ALICE);
    // Sesame imports the IdP from its metadata URL (on loopback, Sesame's outbound HTTP rules).
    const conn = await sesame.adminOk(
      'POST',
      '/tenants/default/sso',
      {
        id: CONNECTION,
        kind: 'saml',
        display_name: 'PySAML Corp',
        idp_metadata_url: idp.metadata_url,
        email_claim: 'mail',
        display_name_claim: 'displayName',
        groups_claim: 'eduPersonAffiliation',
        admin_groups: ['admins'],
        trusted_email: true,
      },
      201,
    );
    assert.equal(conn.idp_entity_id, idp.entity_id);
    assert.equal(conn.sso_url, idp.sso_url);
    assert.equal(conn.sso_binding, 'redirect');
    acsUrl = `${sesame.issuer()}/sso/${CONNECTION}/saml/acs`;
    // pysaml2 learns Sesame (entity id, ACS, AuthnRequest certificate) from the SP metadata.
    const spMetadata = await fetch(`${sesame.issuer()}/sso/${CONNECTION}/saml/metadata`);
    assert.equal(spMetadata.status, 200);
    assert.equal(spMetadata.headers.get('content-type'), 'application/samlmetadata+xml');
    await idp.setSpMetadata(await spMetadata.text());

    rp = await new RelyingParty({ scope: SCOPE }).listen();
    rp.clientName = `SAML browser test RP ${rp.port}`;
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
      const { session: first, response } = await signInThroughIdp(t, 'first', { expectSesameConsent: true });
      const sub = first.claims.sub;
      // openid-client checked the ID token (signature, iss, aud, nonce) before this.
      assert.equal(first.claims.iss, sesame.issuer());
      assert.deepEqual(first.claims.amr, ['fed']);
      assert.deepEqual([...first.claims.groups].sort(), ['admins', 'staff']);
      assert.equal(first.claims.email, 'alice@pysaml.test');
      assert.equal(first.claims.email_verified, true);
      let info = await ssoInfo(sub);
      assert.equal(info.admin_by_sso, true, `admin through the admins group: ${JSON.stringify(info)}`);
      assert.deepEqual(info.external_identities, [{ connection: CONNECTION, subject: ALICE.name_id }]);
      const user = await sesame.adminOk('GET', `/tenants/default/users/${sub}`, undefined, 200);
      assert.equal(user.username, 'alice@pysaml.test', JSON.stringify(user));
      assert.equal(user.name, 'Alice Liddell');

      const { session: second } = await signInThroughIdp(t, 'second', { expectSesameConsent: false });
      assert.equal(second.claims.sub, sub, 'the second sign-in links to the same user');
      assert.deepEqual([...second.claims.groups].sort(), ['admins', 'staff']);
      assert.equal((await ssoInfo(sub)).admin_by_sso, true);
      const users = await sesame.adminOk('GET', '/tenants/default/users', undefined, 200);
      assert.equal(
        JSON.stringify(users).split('alice@pysaml.test').length - 1,
        2,
        `one user (username and email): ${JSON.stringify(users)}`,
      );

      // The person leaves the admin group at the IdP.
      await idp.setPerson('alice', {
        ...ALICE,
        attributes: { ...ALICE.attributes, eduPersonAffiliation: ['staff'] },
      });
      const { session: third } = await signInThroughIdp(t, 'third', { expectSesameConsent: false });
      assert.equal(third.claims.sub, sub);
      assert.deepEqual(third.claims.groups, ['staff']);
      info = await ssoInfo(sub);
      assert.equal(info.admin_by_sso, false, `no longer admin: ${JSON.stringify(info)}`);

      const stats = await idp.stats();
      assert.deepEqual(
        stats,
        { authn_requests_verified: 3, authn_requests_refused: 0, logins_refused: 0, responses: 3 },
        'pysaml2 verified the signature of every AuthnRequest',
      );

      const usersBefore = await sesame.adminOk('GET', '/tenants/default/users', undefined, 200);
      // The first sign-in's Response, posted again by another browser (no pending sign-in there):
      // Sesame's re-post still has no cookie, and the ACS refuses it.
      const context = await newContext(t);
      const page = await context.newPage();
      const acsPosts = watchAcs(page);
      const steps = new Steps(`${t.name} replay`, page, {
        context: () => `sesamed stderr (tail):\n${sesame.stderrTail(3000)}`,
      });
      await steps.step('a replayed Response in another browser is refused', async () => {
        // From the IdP's origin, as a stolen auto-submit page would be.
        await page.goto(`${idp.base}/`); // an HTML page (404) of the IdP's origin
        const done = page.waitForResponse((r) => r.url() === acsUrl && r.request().postData()?.includes('resubmitted=1'));
        await page.evaluate(
          ({ action, fields }) => {
            const form = document.createElement('form');
            form.method = 'post';
            form.action = action;
            for (const [name, value] of Object.entries(fields)) {
              const input = document.createElement('input');
              input.type = 'hidden';
              input.name = name;
              input.value = value;
              form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();
          },
          { action: acsUrl, fields: response },
        );
        const refused = await done;
        assert.equal(refused.status(), 400);
        await page.waitForLoadState();
        assert.match(await page.locator('body').innerText(), /started in another browser/);
        assert.equal(acsPosts.length, 2, 'the cross-site POST and Sesame re-post');
        assert.equal(hasSsoCookie(await acsPosts[1].headers), false);
      });
      const afterReplay = await sesame.adminOk('GET', '/tenants/default/users', undefined, 200);
      assert.deepEqual(afterReplay, usersBefore, 'no user created or changed by the replay');
    } catch (e) {
      failed = true;
      throw e;
    }
  });
});
