// Workload tokens verified by an outside library from the exported static files alone: Node's
// `jose` (panva) reads the workload issuer's discovery document and JWKS from a plain static
// file server (the output of `sesame admin workload-issuer export --out DIR`), never from sesamed,
// before and after a key rotation. No browser: this lives here for the Node harness.
//
//   1. the workload issuer is set to the static server's URL; export; a source's token verifies
//      (signature, iss, aud, typ JWT) with jose's remote JWKS set pointed at the static files;
//   2. keys are rotated (forced); the old export still verifies a token signed after the
//      rotation (a key is published as `next` before it signs), a fresh export verifies both the
//      old token (retired key still published) and the new one;
//   3. a token whose signature was altered, or checked for another audience, is refused.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import * as jose from 'jose';
import { REPO_ROOT, startSesame } from './lib/sesame.mjs';

const SESAME_BIN = process.env.SESAME_BIN ?? path.join(REPO_ROOT, 'target/debug/sesame');
const AUDIENCE = 'https://warehouse.example';
const run = promisify(execFile);

let sesame;
let staticServer;
let staticRoot;
let issuer;
let client;
let failed = false;

/** Serves files under `staticRoot` (the current export), GET only, JSON. */
async function startStatic() {
  staticRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'sesame-workload-static-'));
  staticServer = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const prefix = '/workload/';
    const file = url.pathname.startsWith(prefix) ? path.join(staticRoot, 'current', url.pathname.slice(prefix.length)) : null;
    if (req.method !== 'GET' || !file || !file.startsWith(staticRoot) || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(fs.readFileSync(file));
  });
  staticServer.listen(0, '127.0.0.1');
  await once(staticServer, 'listening');
  return `http://127.0.0.1:${staticServer.address().port}/workload`;
}

/** `sesame admin workload-issuer export --out DIR`, then DIR is what the static server serves. */
async function exportTo(name) {
  const dir = path.join(staticRoot, name);
  await run(SESAME_BIN, ['admin', 'workload-issuer', 'export', '--out', dir], {
    env: { ...process.env, SESAME_URL: sesame.baseUrl, SESAME_ADMIN_TOKEN: sesame.adminToken },
  });
  const current = path.join(staticRoot, 'current');
  fs.rmSync(current, { force: true, recursive: true });
  fs.cpSync(dir, current, { recursive: true });
  return dir;
}

/** A JWKS set from the static files only: discovery, then its jwks_uri (no cache across calls). */
async function staticKeys() {
  const conf = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  assert.equal(conf.issuer, issuer);
  assert.ok(conf.jwks_uri.startsWith(`${issuer}/`), `jwks_uri on the static site: ${conf.jwks_uri}`);
  return jose.createRemoteJWKSet(new URL(conf.jwks_uri), { cacheMaxAge: 0, cooldownDuration: 0 });
}

/** The keys of one export, read from its files. */
function keysOf(dir) {
  return jose.createLocalJWKSet(JSON.parse(fs.readFileSync(path.join(dir, 'jwks.json'), 'utf8')));
}

async function workloadToken() {
  const resp = await fetch(`${sesame.issuer()}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=urn%3Asesame%3Aparams%3Aoauth%3Agrant-type%3Aworkload-token',
  });
  const body = await resp.json();
  assert.equal(resp.status, 200, JSON.stringify(body));
  return body.access_token;
}

async function verify(token, keys) {
  const { payload, protectedHeader } = await jose.jwtVerify(token, keys, {
    issuer,
    audience: AUDIENCE,
    typ: 'JWT',
  });
  assert.match(payload.sub, /^ri\.sesame\.default\.source\./);
  return { payload, protectedHeader };
}

describe('workload tokens verified by jose from the exported files', () => {
  before(async () => {
    sesame = await startSesame();
    issuer = await startStatic();
    await sesame.adminOk('PATCH', '/tenants/default/workload', { workload_issuer: issuer }, 200);
    client = await sesame.createClient({
      name: 'warehouse-sync',
      grant_types: ['urn:sesame:params:oauth:grant-type:workload-token'],
    });
    await sesame.adminOk(
      'POST',
      '/tenants/default/sources',
      { name: 'warehouse sync', client_id: client.clientId, audiences: [AUDIENCE] },
      201,
    );
  });

  after(async () => {
    staticServer?.closeAllConnections?.();
    staticServer?.close();
    if (staticRoot) fs.rmSync(staticRoot, { recursive: true, force: true });
    if (!sesame) return;
    const exit = await sesame.stop();
    if (failed) console.error(`[workload test] sesamed data dir and logs kept in ${sesame.dataDir}`);
    else fs.rmSync(sesame.dataDir, { recursive: true, force: true });
    assert.ok(!exit.killed && exit.code === 0, `sesamed exited with ${JSON.stringify(exit)}`);
  });

  test('before and after a key rotation', { timeout: 120_000 }, async () => {
    try {
      const first = await exportTo('before');
      const before = await workloadToken();
      const { protectedHeader: h1 } = await verify(before, await staticKeys());
      await verify(before, keysOf(first));

      // Refusals: another audience, an altered signature.
      await assert.rejects(
        jose.jwtVerify(before, keysOf(first), { issuer, audience: 'https://other.example' }),
        (e) => e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED',
      );
      const [h, p, s] = before.split('.');
      const altered = `${h}.${p}.${s.slice(0, -4)}${s.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
      await assert.rejects(verify(altered, keysOf(first)), (e) => e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');

      await sesame.adminOk('POST', '/tenants/default/keys/rotate', { force: true }, 200);
      const afterRotation = await workloadToken();
      const { protectedHeader: h2 } = await verify(afterRotation, keysOf(first));
      assert.notEqual(h2.kid, h1.kid, 'the rotation changed the signing key');

      const second = await exportTo('after');
      const keys = await staticKeys();
      await verify(before, keys);
      await verify(afterRotation, keys);
      await verify(before, keysOf(second));
      await verify(afterRotation, keysOf(second));
    } catch (e) {
      failed = true;
      throw e;
    }
  });
});
