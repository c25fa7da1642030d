// Headless Chromium (Debian's /usr/bin/chromium) through playwright-core, and named test steps
// that leave a screenshot, the page's HTML and its URL under tests/browser/artifacts/ when they fail.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
  // Loopback only: never a proxy from the environment.
  '--no-proxy-server',
];

export async function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);

/**
 * Runs named steps against one page. With BROWSER_TEST_SCREENSHOTS=all every step that passes
 * saves artifacts/<test>--<nn>-<step>.ok.png. A failing step saves
 * artifacts/<test>--<nn>-<step>.png (and .html, .txt with the URL and the error), prints the
 * paths, and rethrows with the step's name and the page's URL in the message.
 */
export class Steps {
  constructor(testName, page, { context } = {}) {
    this.testName = slug(testName);
    this.page = page;
    this.n = 0;
    this.context = context ?? (() => '');
  }

  async step(name, fn) {
    const n = String(++this.n).padStart(2, '0');
    try {
      const result = await fn();
      if (process.env.BROWSER_TEST_SCREENSHOTS === 'all') {
        fs.mkdirSync(ARTIFACTS, { recursive: true });
        const file = path.join(ARTIFACTS, `${this.testName}--${n}-${slug(name)}.ok.png`);
        await this.page.screenshot({ path: file, fullPage: true });
        console.error(`[browser test] saved ${file}`);
      }
      return result;
    } catch (err) {
      const base = path.join(ARTIFACTS, `${this.testName}--${n}-${slug(name)}`);
      const saved = await this.capture(base, name, err);
      const where = saved.length ? `\n  artifacts:\n${saved.map((p) => `    ${p}`).join('\n')}` : '';
      for (const p of saved) console.error(`[browser test] saved ${p}`);
      const extra = this.context();
      err.message = `step "${name}" failed at ${this.page.url()}: ${err.message}${where}${extra ? `\n${extra}` : ''}`;
      throw err;
    }
  }

  async capture(base, name, err) {
    const saved = [];
    try {
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await this.page.screenshot({ path: `${base}.png`, fullPage: true, timeout: 10_000 });
      saved.push(`${base}.png`);
    } catch (e) {
      console.error(`[browser test] no screenshot for step "${name}": ${e.message}`);
    }
    try {
      fs.writeFileSync(`${base}.html`, await this.page.content());
      saved.push(`${base}.html`);
    } catch {
      // the page may be gone
    }
    try {
      fs.writeFileSync(`${base}.txt`, `step: ${name}\nurl: ${this.page.url()}\n\n${err?.stack ?? err}\n`);
      saved.push(`${base}.txt`);
    } catch {
      // nothing more to save
    }
    return saved;
  }
}
