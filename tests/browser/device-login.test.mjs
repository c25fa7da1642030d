// `sesame login --device` with a real browser (RFC 8628): the CLI prints a URL and a code and
// polls; headless Chromium opens the URL, signs in on /device, enters the code, sees the client
// named and approves (or denies). Approval: the CLI stores the sign-in and `sesame token` prints
// a token /userinfo accepts. Denial: the CLI says so and stores nothing.
// Needs target/debug/sesame (SESAME_BIN) besides sesamed.

import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { launchChromium, Steps } from './lib/browser.mjs';
import { REPO_ROOT, startSesame } from './lib/sesame.mjs';

const ALICE = { username: 'alice', password: 'correct horse battery staple', email: 'alice@example.com', email_verified: true, name: 'Alice Example' };
const SESAME_BIN = process.env.SESAME_BIN ?? path.join(REPO_ROOT, 'target/debug/sesame');

let sesame;
let browser;
let configDir;

const cliEnv = () => ({ ...process.env, SESAME_CONFIG_DIR: configDir, BROWSER: 'true' });

/** Starts `sesame login --device …`; resolves with the verification URI and code it prints. */
function startDeviceLogin(args) {
  const child = spawn(SESAME_BIN, ['login', '--device', ...args], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const printed = new Promise((resolve, reject) => {
    let uri;
    const lines = readline.createInterface({ input: child.stderr });
    lines.on('line', (line) => {
      stderr += `${line}\n`;
      const trimmed = line.trim();
      if (trimmed === `${sesame.issuer()}/device`) uri = trimmed;
      else if (uri && /^[B-Z]{4}-[B-Z]{4}$/.test(trimmed)) resolve({ uri, code: trimmed });
    });
    child.on('exit', () => reject(new Error(`sesame login --device ended without a code:\n${stderr}`)));
  });
  return { child, printed, exited, stderr: () => stderr };
}

describe('sesame login --device in a real browser', () => {
  before(async () => {
    sesame = await startSesame();
    browser = await launchChromium();
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sesame-device-'));
    await sesame.createUser(ALICE);
    await sesame.createClient({
      client_id: 'device-cli',
      name: 'Device CLI',
      client_type: 'public',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    });
  });

  after(async () => {
    await browser?.close();
    if (sesame) await sesame.stop();
    if (configDir) fs.rmSync(configDir, { recursive: true, force: true });
  });

  /** Opens the printed URL, signs in as alice, types the code, and waits for Approve / Deny. */
  async function reachDecision(steps, page, printed) {
    await steps.step('the printed URL asks to sign in', async () => {
      await page.goto(printed.uri);
      await page.locator('input[name="password"]').waitFor({ state: 'visible' });
    });
    await steps.step('signing in shows the code form', async () => {
      await page.locator('input[name="username"]').fill(ALICE.username);
      await page.locator('input[name="password"]').fill(ALICE.password);
      await page.locator('form button[type="submit"]').first().click();
      await page.locator('input[name="user_code"]').waitFor({ state: 'visible' });
    });
    await steps.step('the code (typed in lower case) shows the client and its scopes', async () => {
      await page.locator('input[name="user_code"]').fill(printed.code.toLowerCase());
      await page.locator('form button[type="submit"]').first().click();
      await page.locator('button[name="decision"][value="allow"]').waitFor({ state: 'visible' });
      const body = await page.textContent('body');
      assert.ok(body.includes('Device CLI'), body);
      assert.ok(body.includes('offline_access'), body);
    });
  }

  test('approving signs the CLI in; token and userinfo work', { timeout: 120_000 }, async (t) => {
    const context = await browser.newContext();
    context.setDefaultTimeout(15_000);
    t.after(() => context.close());
    const page = await context.newPage();
    const login = startDeviceLogin(['--issuer', sesame.issuer(), '--client-id', 'device-cli', '--scope', 'openid profile email offline_access']);
    t.after(() => login.child.kill());
    const steps = new Steps(t.name, page, { context: () => `sesame login stderr:\n${login.stderr()}` });
    const printed = await login.printed;
    await reachDecision(steps, page, printed);
    await steps.step('approving connects the device; the CLI stores the sign-in', async () => {
      await page.locator('button[name="decision"][value="allow"]').click();
      await page.locator('#device-done').waitFor({ state: 'visible' });
      assert.match(await page.textContent('body'), /Device connected/);
      assert.equal(await login.exited, 0, login.stderr());
      const mode = fs.statSync(path.join(configDir, 'credentials.json')).mode & 0o777;
      assert.equal(mode, 0o600);
    });
    await steps.step('sesame token prints a token /userinfo accepts', async () => {
      const run = promisify(execFile);
      const { stdout: token } = await run(SESAME_BIN, ['token'], { env: cliEnv() });
      const r = await fetch(`${sesame.issuer()}/userinfo`, { headers: { authorization: `Bearer ${token.trim()}` } });
      assert.equal(r.status, 200);
      assert.equal((await r.json()).preferred_username, 'alice');
    });
  });

  test('denying ends the CLI with a message and no sign-in', { timeout: 120_000 }, async (t) => {
    const context = await browser.newContext();
    context.setDefaultTimeout(15_000);
    t.after(() => context.close());
    const page = await context.newPage();
    const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sesame-device-deny-'));
    t.after(() => fs.rmSync(profileDir, { recursive: true, force: true }));
    const previous = configDir;
    configDir = profileDir;
    t.after(() => { configDir = previous; });
    const login = startDeviceLogin(['--issuer', sesame.issuer(), '--client-id', 'device-cli', '--scope', 'openid']);
    t.after(() => login.child.kill());
    const steps = new Steps(t.name, page, { context: () => `sesame login stderr:\n${login.stderr()}` });
    const printed = await login.printed;
    await steps.step('the prefilled link still waits for a click', async () => {
      await page.goto(`${printed.uri}?user_code=${printed.code}`);
      await page.locator('input[name="password"]').waitFor({ state: 'visible' });
      await page.locator('input[name="username"]').fill(ALICE.username);
      await page.locator('input[name="password"]').fill(ALICE.password);
      await page.locator('form button[type="submit"]').first().click();
      await page.locator('input[name="user_code"]').waitFor({ state: 'visible' });
      assert.equal(await page.locator('input[name="user_code"]').inputValue(), printed.code);
      await page.locator('form button[type="submit"]').first().click();
      await page.locator('button[name="decision"][value="deny"]').waitFor({ state: 'visible' });
    });
    await steps.step('denying: the page says so, the CLI stops and stores nothing', async () => {
      await page.locator('button[name="decision"][value="deny"]').click();
      await page.locator('#device-done').waitFor({ state: 'visible' });
      assert.match(await page.textContent('body'), /Request denied/);
      assert.notEqual(await login.exited, 0);
      assert.match(login.stderr(), /denied in the browser/);
      assert.ok(!fs.existsSync(path.join(profileDir, 'credentials.json')));
    });
  });
});
