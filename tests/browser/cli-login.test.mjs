// `sesame login` with a real browser: the CLI waits on its loopback listener, headless Chromium
// follows the URL it prints, signs in and allows the consent page, and lands on the CLI's page
// that says the tab may be closed. Then `sesame token` prints a token /userinfo accepts and
// `sesame whoami` names the person. Needs target/debug/sesame (SESAME_BIN) besides sesamed.

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

/**
 * The environment of every `sesame` run: its own cache (in the file, never the person's keyring),
 * and no browser of its own to open.
 */
const cliEnv = () => ({
  ...process.env,
  SESAME_CONFIG_DIR: configDir,
  SESAME_CREDENTIAL_STORE: 'file',
  BROWSER: 'true',
});

/** Starts `sesame login …` and resolves with the child and the authorization URL it prints. */
function startLogin(args) {
  const child = spawn(SESAME_BIN, ['login', ...args], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const url = new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stderr });
    lines.on('line', (line) => {
      stderr += `${line}\n`;
      const trimmed = line.trim();
      if (trimmed.startsWith(`${sesame.issuer()}/authorize?`)) resolve(trimmed);
    });
    child.on('exit', () => reject(new Error(`sesame login ended without a URL:\n${stderr}`)));
  });
  return { child, url, exited, stderr: () => stderr };
}

describe('sesame login in a real browser', () => {
  before(async () => {
    sesame = await startSesame();
    browser = await launchChromium();
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sesame-cli-'));
    await sesame.createUser(ALICE);
    await sesame.createClient({
      client_id: 'sesame-cli',
      name: 'Sesame CLI',
      client_type: 'public',
      redirect_uris: ['http://127.0.0.1/callback', `${sesame.issuer()}/oob`],
    });
  });

  after(async () => {
    await browser?.close();
    if (sesame) await sesame.stop();
    if (configDir) fs.rmSync(configDir, { recursive: true, force: true });
  });

  test('loopback sign-in, then token and whoami', { timeout: 120_000 }, async (t) => {
    const context = await browser.newContext();
    context.setDefaultTimeout(15_000);
    t.after(() => context.close());
    const page = await context.newPage();
    const login = startLogin(['--issuer', sesame.issuer(), '--client-id', 'sesame-cli']);
    t.after(() => login.child.kill());
    const steps = new Steps(t.name, page, { context: () => `sesame login stderr:\n${login.stderr()}` });

    await steps.step('the printed URL shows the login page', async () => {
      await page.goto(await login.url);
      await page.locator('input[name="password"]').waitFor({ state: 'visible' });
    });
    await steps.step('signing in shows the consent page naming the CLI', async () => {
      await page.locator('input[name="username"]').fill(ALICE.username);
      await page.locator('input[name="password"]').fill(ALICE.password);
      await page.locator('form button[type="submit"], form button:not([type])').first().click();
      await page.locator('button[name="decision"][value="allow"]').waitFor({ state: 'visible' });
      assert.ok((await page.textContent('body')).includes('Sesame CLI'));
    });
    await steps.step('allowing lands on the loopback page, and the CLI stores the sign-in', async () => {
      await page.locator('button[name="decision"][value="allow"]').click();
      await page.waitForURL((u) => u.href.startsWith('http://127.0.0.1:') && u.pathname === '/callback');
      assert.match(await page.textContent('body'), /You may close this tab/);
      assert.equal(await login.exited, 0, login.stderr());
      const mode = fs.statSync(path.join(configDir, 'credentials.json')).mode & 0o777;
      assert.equal(mode, 0o600);
    });
    await steps.step('sesame token prints a token /userinfo accepts; whoami names alice', async () => {
      const run = promisify(execFile);
      const { stdout: token } = await run(SESAME_BIN, ['token'], { env: cliEnv() });
      const r = await fetch(`${sesame.issuer()}/userinfo`, { headers: { authorization: `Bearer ${token.trim()}` } });
      assert.equal(r.status, 200);
      assert.equal((await r.json()).preferred_username, 'alice');
      const { stdout: who } = await run(SESAME_BIN, ['whoami'], { env: cliEnv() });
      assert.match(who, /alice@example\.com/);
    });
  });
});
