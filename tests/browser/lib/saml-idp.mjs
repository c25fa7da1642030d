// A SAML 2.0 IdP for sso-saml.test.mjs: pysaml2 (the Python suite's SAML implementation, signing
// with the xmlsec1 binary) run as lib/saml_idp.py, with a login form. See that file for its routes.
//
// The Python is SAML_IDP_PYTHON (default: <repo>/target/py-venv/bin/python, the virtual
// environment scripts/test and run.sh make from tests/interop/python/requirements.txt).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from './sesame.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const START_TIMEOUT_MS = 30_000;
const HTTP_TIMEOUT_MS = 10_000;

export function samlIdpPython() {
  const python = process.env.SAML_IDP_PYTHON ?? path.join(REPO_ROOT, 'target', 'py-venv', 'bin', 'python');
  try {
    fs.accessSync(python, fs.constants.X_OK);
  } catch {
    throw new Error(
      `${python} is missing: the SAML IdP needs a Python with tests/interop/python/requirements.txt ` +
        '(tests/browser/run.sh makes target/py-venv), or set SAML_IDP_PYTHON',
    );
  }
  return python;
}

export class SamlIdp {
  /**
   * Starts the IdP on 127.0.0.1; the browser reaches it as http://<publicHost>:<port>.
   * Resolves once it has printed its addresses (base, metadata_url, entity_id, sso_url).
   */
  async start({ publicHost = 'localhost' } = {}) {
    this.stderr = '';
    this.child = spawn(samlIdpPython(), [path.join(HERE, 'saml_idp.py'), '--public-host', publicHost], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    this.exit = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    this.child.stderr.on('data', (d) => {
      this.stderr = (this.stderr + d).slice(-8000);
    });
    const lines = readline.createInterface({ input: this.child.stdout });
    let timer;
    const first = await Promise.race([
      new Promise((resolve) => lines.once('line', resolve)),
      this.exit.then((e) => Promise.reject(new Error(`saml_idp.py exited ${JSON.stringify(e)}: ${this.stderr}`))),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`saml_idp.py did not start: ${this.stderr}`)), START_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    Object.assign(this, JSON.parse(first));
    return this;
  }

  async control(method, route, body, contentType = 'application/json') {
    const resp = await fetch(`${this.control_url}${route}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': contentType },
      body: body === undefined ? undefined : contentType === 'application/json' ? JSON.stringify(body) : body,
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    const text = await resp.text();
    if (!resp.ok) throw new Error(`saml_idp ${method} ${route}: ${resp.status} ${text}\n${this.stderr}`);
    return text ? JSON.parse(text) : undefined;
  }

  /** pysaml2 learns the SP (its entity id, ACS, AuthnRequest signing certificate) from this XML. */
  setSpMetadata(xml) {
    return this.control('POST', '/sp', xml, 'application/samlmetadata+xml');
  }

  /** A person who may sign in: { password, name_id, attributes: { name: [values] } } (replaces). */
  setPerson(login, person) {
    return this.control('PUT', `/people/${encodeURIComponent(login)}`, person);
  }

  /** { authn_requests_verified, authn_requests_refused, logins_refused, responses } */
  stats() {
    return this.control('GET', '/stats');
  }

  async close() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    let timer;
    const stopped = await Promise.race([
      this.exit,
      new Promise((resolve) => (timer = setTimeout(resolve, 5000, null))),
    ]);
    clearTimeout(timer);
    if (!stopped) this.child.kill('SIGKILL');
  }
}
