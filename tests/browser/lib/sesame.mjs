// Runs a real `sesamed serve --dev` for the browser tests and talks to its admin API
// (docs/admin-api.md), the same way tests/interop/python/conftest.py does.
//
// The binary is SESAMED_BIN (default: <repo>/target/debug/sesamed). It listens on a free loopback
// port with a temporary data directory; dev mode writes the admin token to <data-dir>/admin-token.
// At the end it gets SIGTERM and must exit with status 0.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const READY_TIMEOUT_MS = Number(process.env.SESAMED_READY_TIMEOUT ?? 30) * 1000;
const STOP_TIMEOUT_MS = Number(process.env.SESAMED_STOP_TIMEOUT ?? 15) * 1000;
const HTTP_TIMEOUT_MS = 10_000;

export function sesamedBinary() {
  const bin = process.env.SESAMED_BIN
    ? path.resolve(process.env.SESAMED_BIN)
    : path.join(process.env.CARGO_TARGET_DIR ?? path.join(REPO_ROOT, 'target'), 'debug', 'sesamed');
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(
      `sesamed binary ${bin} is missing or not executable: build it with ` +
        '`cargo build -p sesame-server --bin sesamed`, or set SESAMED_BIN',
    );
  }
  return bin;
}

export async function freeLoopbackPort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

export function tail(file, limit = 4000) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.length <= limit ? text : '…' + text.slice(-limit);
  } catch (e) {
    return `<cannot read ${file}: ${e.message}>`;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Sesame {
  constructor({ child, baseUrl, dataDir, adminToken, stderrPath }) {
    this.child = child;
    this.baseUrl = baseUrl;
    this.dataDir = dataDir;
    this.adminToken = adminToken;
    this.stderrPath = stderrPath;
    this.exit = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
      else child.once('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  issuer(tenant = 'default') {
    return `${this.baseUrl}/t/${tenant}`;
  }

  stderrTail(limit) {
    return tail(this.stderrPath, limit);
  }

  async admin(method, apiPath, body) {
    const resp = await fetch(`${this.baseUrl}/admin/v1${apiPath}`, {
      method,
      headers: {
        authorization: `Bearer ${this.adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    const text = await resp.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: resp.status, text, json };
  }

  async adminOk(method, apiPath, body, status) {
    const r = await this.admin(method, apiPath, body);
    if (r.status !== status) {
      throw new Error(`admin ${method} ${apiPath} ${JSON.stringify(body)}: expected ${status}, got ${r.status} ${r.text}`);
    }
    return r.json;
  }

  /** POST /tenants/{tenant}/users; returns the User. */
  async createUser(spec, tenant = 'default') {
    return this.adminOk('POST', `/tenants/${tenant}/users`, spec, 201);
  }

  /** POST /tenants/{tenant}/clients; returns { client, client_secret }. */
  async createClient(spec, tenant = 'default') {
    const body = await this.adminOk(
      'POST',
      `/tenants/${tenant}/clients`,
      { client_id: `browser-${randomBytes(6).toString('hex')}`, ...spec },
      201,
    );
    return { client: body.client, clientId: body.client.client_id, clientSecret: body.client_secret };
  }

  /** GET /tenants/{tenant}/users/{user}/sessions; returns the list of live browser sessions. */
  async userSessions(user, tenant = 'default') {
    return (await this.adminOk('GET', `/tenants/${tenant}/users/${user}/sessions`, undefined, 200)).sessions;
  }

  /** SIGTERM, then wait; returns { code, signal } (SIGKILL after STOP_TIMEOUT, with killed: true). */
  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    let timer;
    const timeout = new Promise((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS, null)));
    const result = await Promise.race([this.exit, timeout]);
    clearTimeout(timer);
    if (result) return result;
    this.child.kill('SIGKILL');
    return { ...(await this.exit), killed: true };
  }
}

/** Starts `sesamed serve --dev` on a free loopback port in a new temp data dir; waits for /readyz. */
export async function startSesame({ attempts = 3 } = {}) {
  const bin = sesamedBinary();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sesame-browser-'));
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = await freeLoopbackPort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const stdoutPath = path.join(dataDir, `sesamed-${attempt}.stdout`);
    const stderrPath = path.join(dataDir, `sesamed-${attempt}.stderr`);
    const args = ['serve', '--dev', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir];
    const child = spawn(bin, args, {
      stdio: ['ignore', fs.openSync(stdoutPath, 'w'), fs.openSync(stderrPath, 'w')],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let exited = null;
    child.once('exit', (code, signal) => (exited = { code, signal }));
    child.once('error', (err) => (exited = { code: null, signal: null, err }));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (exited) {
        const stderr = tail(stderrPath);
        if (attempt < attempts && stderr.toLowerCase().includes('in use')) break; // port race
        throw new Error(
          `sesamed exited (${JSON.stringify(exited)}) before it was ready ` +
            `(${bin} ${args.join(' ')}); stderr:\n${stderr}`,
        );
      }
      try {
        const r = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        if (r.status === 200) {
          const adminToken = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
          if (!adminToken) throw new Error(`${dataDir}/admin-token is empty`);
          return new Sesame({ child, baseUrl, dataDir, adminToken, stderrPath });
        }
      } catch (e) {
        if (e.message?.includes('admin-token')) throw e;
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(
          `sesamed did not answer 200 on ${baseUrl}/readyz within ${READY_TIMEOUT_MS / 1000}s; ` +
            `stderr:\n${tail(stderrPath)}`,
        );
      }
      await sleep(100);
    }
  }
  throw new Error('unreachable');
}
