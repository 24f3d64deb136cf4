// The dashboard end to end in Debian's Chromium (playwright-core, headless, one browser for the file): sign-in, each
// page, creating and revoking a key (checked through the API), a streamed playground reply, a run that grows while
// its page is open, and a cross-site POST refused. Screenshots of each page go to a temp folder, and to
// docs/dashboard/ when AJAR_UPDATE_SCREENSHOTS=1. Without /usr/bin/chromium the tests skip and say why.
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { dashboardOptions } from '../../../src/dashboard/index.js';
import { appendResult, releaseOpen } from '../../../src/release/index.js';
import { useReferenceBackend } from '../../helpers/backends.js';
import { goldenPath } from '../../helpers/golden.js';
import { ADMIN_TOKEN, bearer, harness, MODEL_ID, type Harness } from '../helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install -y chromium)`;
const SHOTS = process.env.AJAR_UPDATE_SCREENSHOTS === '1' ? join(process.cwd(), 'docs', 'dashboard') : mkdtempSync(join(tmpdir(), 'ajar-shots-'));

function trainRow(step: number): string {
  // A made-up but plausible curve (values are only drawn, not checked against a reference).
  return `${JSON.stringify({ step, train_loss: 4 * Math.exp(-step / 40) + 1.2, lr: 6e-4 * Math.min(1, step / 10), tokens_per_s: 900 + step, elapsed_s: step * 0.5 })}\n`;
}

function writeRuns(dir: string): string {
  const a = join(dir, 'shakespeare-char');
  const b = join(dir, 'shakespeare-char-dp');
  mkdirSync(a, { recursive: true });
  mkdirSync(b, { recursive: true });
  let text = '';
  for (let s = 10; s <= 200; s += 10) {
    text += trainRow(s);
    if (s % 50 === 0) text += `${JSON.stringify({ step: s, train_loss_eval: 4 * Math.exp(-s / 40) + 1.15, val_loss: 4 * Math.exp(-s / 40) + 1.3, elapsed_s: s * 0.5 })}\n`;
  }
  writeFileSync(join(a, 'metrics.jsonl'), text);
  writeFileSync(join(a, 'training_args.json'), JSON.stringify({ preset: 'shakespeare-char', max_iters: 200, learning_rate: 6e-4 }));
  let dp = '';
  for (let s = 10; s <= 120; s += 10) {
    dp += `${JSON.stringify({ step: s, train_loss: 4.2 * Math.exp(-s / 60) + 1.5, lr: 1e-3, tokens_per_s: 300, elapsed_s: s, epsilon: 0.05 * Math.sqrt(s) })}\n`;
  }
  writeFileSync(join(b, 'metrics.jsonl'), dp);
  return a;
}

function writeModels(dir: string): void {
  const model = join(dir, 'gpt2-tiny');
  cpSync(goldenPath('gpt2-tiny'), model, { recursive: true, filter: (src) => !src.endsWith('.py') && !src.endsWith('expected.json') });
  appendResult(model, {
    task: 'lm', dataset: 'eval.txt', metrics: { loss: 10.8, perplexity: 49000 }, iters: null, date: '2026-01-15T12:00:00Z', source: 'ajar eval',
  });
  releaseOpen({ modelDir: model, out: join(dir, 'gpt2-tiny-open'), license: 'Apache-2.0', name: 'gpt2-tiny', author: 'Example Org', now: new Date('2026-01-15T12:00:00Z') });
  // A release whose weights changed after it was made: verification must say so.
  cpSync(goldenPath('release/char-tiny'), join(dir, 'char-tiny-tampered'), { recursive: true });
  appendFileSync(join(dir, 'char-tiny-tampered', 'config.json'), ' ');
}

describe('dashboard in Chromium', { skip }, () => {
  let h: Harness;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let evil: Server;
  let evilPort: number;
  let tmp: string;
  let liveRun: string;
  let profile: string;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ajar-dash-'));
    mkdirSync(join(tmp, 'runs'));
    mkdirSync(join(tmp, 'models'));
    liveRun = writeRuns(join(tmp, 'runs'));
    useReferenceBackend();
    writeModels(join(tmp, 'models'));
    h = await harness({ clock: Date.now, dashboard: dashboardOptions({ runs: join(tmp, 'runs'), models: join(tmp, 'models') }) });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
    // A page on another origin that posts a form to the dashboard (a classic CSRF attempt).
    evil = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><form id="f" method="post" action="${base}/ui/api/keys" enctype="application/x-www-form-urlencoded">`
        + '<input name="name" value="evil"></form><script>document.getElementById("f").submit()</script>');
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    evilPort = (evil.address() as { port: number }).port;
    const { chromium } = await import('playwright-core');
    profile = mkdtempSync(join(tmpdir(), 'ajar-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 800 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run',
        '--disable-quic', '--disable-sync'],
    });
    page = context.pages()[0] ?? await context.newPage();
    page.on('dialog', (d) => void d.accept());
  });

  after(async () => {
    await context?.close();
    evil?.close();
    await h?.close();
    rmSync(tmp, { recursive: true, force: true });
    rmSync(profile, { recursive: true, force: true });
  });

  async function shot(name: string): Promise<void> {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
  }

  /** Fails the test on any error the page logs (a CSP refusal included). */
  const pageErrors: string[] = [];

  it('shows only the sign-in page until the admin token is given', async () => {
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
    await page.goto(`${base}/ui/keys`);
    assert.equal(new URL(page.url()).pathname, '/ui/login');
    await page.fill('#token', 'wrong-token-wrong-token');
    await page.click('button[type=submit]');
    await page.waitForSelector('.error');
    assert.match(await page.textContent('.error') ?? '', /not the admin token/);
    await shot('login');
    pageErrors.length = 0; // the 401 of the failed sign-in is logged by the browser
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('button[type=submit]');
    await page.waitForURL(`${base}/ui/runs`);
    const cookies = await context.cookies(`${base}/ui/runs`);
    const session = cookies.find((c) => c.name === 'ajar_session')!;
    assert.ok(session.httpOnly);
    assert.equal(session.sameSite, 'Strict');
  });

  it('runs: charts of every selected run, updated live as metrics.jsonl grows', async () => {
    await page.waitForSelector('[data-chart="loss"] canvas');
    await page.waitForSelector('[data-chart="eps"] canvas');
    const lastStep = page.locator('li[data-run="shakespeare-char"] .last-step');
    assert.equal(await lastStep.textContent(), '200');
    await shot('runs');
    appendFileSync(join(liveRun, 'metrics.jsonl'), trainRow(210) + trainRow(220));
    await page.waitForFunction(() => document.querySelector('li[data-run="shakespeare-char"] .last-step')?.textContent === '220', null, { timeout: 10_000 });
    // A half-written line is not shown until it is whole.
    appendFileSync(join(liveRun, 'metrics.jsonl'), trainRow(230).slice(0, 20));
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await lastStep.textContent(), '220');
    appendFileSync(join(liveRun, 'metrics.jsonl'), trainRow(230).slice(20));
    await page.waitForFunction(() => document.querySelector('li[data-run="shakespeare-char"] .last-step')?.textContent === '230', null, { timeout: 10_000 });
  });

  it('models and releases: card, results, licence and checksum verification', async () => {
    await page.click('nav >> text=Models and releases');
    await page.waitForSelector('[data-entry="gpt2-tiny-open"]');
    const open = page.locator('[data-entry="gpt2-tiny-open"]');
    assert.match(await open.textContent() ?? '', /checksums ok/);
    assert.match(await open.textContent() ?? '', /licence: apache-2.0/);
    const tampered = page.locator('[data-entry="char-tiny-tampered"]');
    assert.match(await tampered.textContent() ?? '', /config\.json: changed/);
    const model = page.locator('[data-entry="gpt2-tiny"]');
    assert.match(await model.textContent() ?? '', /perplexity/);
    assert.match(await model.textContent() ?? '', /open/); // its release record
    await shot('models');
  });

  it('keys: create (secret shown once), rotate, revoke; each checked through the API', async () => {
    await page.click('nav >> text=Keys');
    await page.waitForSelector('#create-key');
    await page.fill('#name', 'dashboard-test');
    await page.fill('#rpm', '30');
    await page.fill('#quota_tokens', '5000');
    await page.click('#create-key button[type=submit]');
    await page.waitForSelector('#secret-value');
    const key = (await page.textContent('#secret-value'))!.trim();
    assert.match(key, /^ajar_sk_/);
    const models = await h.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(key) });
    assert.equal(models.statusCode, 200);
    const listed = (await h.app.inject({ method: 'GET', url: '/admin/keys', headers: bearer(ADMIN_TOKEN) })).json().data
      .find((k: { name: string }) => k.name === 'dashboard-test');
    assert.equal(listed.rpm, 30);
    assert.equal(listed.quota_tokens, 5000);
    await shot('keys');
    // Rotate: a new secret for the same key; the old one stops working at once.
    await page.click(`button[aria-label="Rotate key ${listed.id}"]`);
    await page.waitForSelector(`text=New secret for dashboard-test`);
    const rotated = (await page.textContent('#secret-value'))!.trim();
    assert.notEqual(rotated, key);
    assert.equal((await h.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(key) })).statusCode, 401);
    assert.equal((await h.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(rotated) })).statusCode, 200);
    await page.click(`button[aria-label="Revoke key ${listed.id}"]`);
    await page.waitForSelector(`text=Key ${listed.id} revoked.`);
    const refused = await h.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(rotated) });
    assert.equal(refused.statusCode, 401);
    assert.equal(refused.json().error.code, 'key_revoked');
    const audit = (await h.store.listAudit({})).filter((a) => a.keyId === listed.id).map((a) => `${a.actor} ${a.action}`);
    assert.deepEqual(audit, ['dashboard key.create', 'dashboard key.rotate', 'dashboard key.revoke']);
  });

  it('playground: a streamed reply and the tokens it cost', async () => {
    await page.click('nav >> text=Playground');
    await page.waitForSelector('#chat');
    assert.equal(await page.inputValue('#model'), MODEL_ID);
    await page.fill('#max_tokens', '8');
    await page.fill('#temperature', '0');
    await page.fill('#prompt', 'The quick brown fox');
    const chat = page.waitForResponse((r) => r.url().endsWith('/ui/api/chat'));
    await page.click('#send');
    const res = await chat;
    assert.match(res.headers()['content-type'], /^text\/event-stream/);
    await page.waitForSelector('.msg.assistant[data-done="true"]');
    const usage = await page.textContent('.msg.assistant .usage');
    const m = /(\d+) prompt \+ (\d+) completion = (\d+) tokens/.exec(usage ?? '');
    assert.ok(m, usage ?? '');
    assert.ok(Number(m[2]) >= 1 && Number(m[2]) <= 8);
    assert.ok((await page.textContent('.msg.assistant .text'))!.length > 0);
    await shot('playground');
    // Metered like any API call: under the client 'dashboard'.
    const rec = (await h.store.listUsage({})).find((u) => u.client === 'dashboard');
    assert.equal(rec?.completionTokens, Number(m[2]));
  });

  it('usage: table, chart and CSV export', async () => {
    await page.click('nav >> text=Usage');
    await page.waitForSelector('#usage-filter');
    await page.waitForSelector('text=anon:dashboard');
    await shot('usage');
    const href = await page.getAttribute('#csv', 'href');
    const csv = await page.evaluate(async (u) => (await fetch(u!)).text(), href);
    assert.match(csv, /^key_id,day,requests,prompt_tokens,completion_tokens\r\n/);
    assert.match(csv, /\r\nanon:dashboard,\d{4}-\d\d-\d\d,1,\d+,\d+\r\n/);
  });

  it('plan: open a scenario, see the recommendation, edit a number and recompute', async () => {
    await page.click('nav >> text=Plan');
    await page.setInputFiles('#scenario-file', join(process.cwd(), 'examples', 'plan', 'scenario.yaml'));
    await page.waitForSelector('#recommendation');
    assert.match(await page.textContent('#recommendation') ?? '', /Recommendation: (open|closed|hybrid)/);
    await page.waitForSelector('.plan-charts img');
    await shot('plan');
    const price = page.locator('input[name="pricing.output_per_1m_usd"]');
    const before = await page.textContent('table');
    await price.fill('0.01');
    await price.press('Enter');
    await page.waitForFunction((b) => document.querySelector('table')?.textContent !== b, before, { timeout: 10_000 });
    assert.equal(await price.inputValue(), '0.01');
  });

  it('refuses a cross-site form POST (and one from another port of the same host)', async () => {
    const keysBefore = (await h.store.listKeys()).length;
    for (const origin of [`http://localhost:${evilPort}`, `http://127.0.0.1:${evilPort}`]) {
      const evilPage = await context.newPage();
      const refused = evilPage.waitForResponse((r) => r.url() === `${base}/ui/api/keys`);
      await evilPage.goto(`${origin}/`);
      const res = await refused;
      // Cross-site (localhost -> 127.0.0.1): no cookie is sent. Same site, other port: the cookie is sent. Either way
      // the origin check refuses it before anything else.
      assert.equal(res.status(), 403, origin);
      await evilPage.close();
    }
    assert.equal((await h.store.listKeys()).length, keysBefore);
  });

  it('follows the system theme and starts keyboard navigation at a skip link', async () => {
    await page.click('nav >> text=Runs');
    await page.waitForSelector('[data-chart="loss"] canvas');
    const background = (): Promise<string> => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(await background(), 'rgb(255, 255, 255)');
    await page.emulateMedia({ colorScheme: 'dark' });
    assert.equal(await background(), 'rgb(13, 17, 23)');
    await page.reload();
    await page.waitForSelector('[data-chart="loss"] canvas');
    await shot('runs-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('href')), '/ui/runs');
    // Every form control on every page has a label.
    for (const name of ['runs', 'keys', 'usage', 'playground', 'plan']) {
      await page.goto(`${base}/ui/${name}`);
      await page.waitForFunction(() => document.querySelector('#app')?.textContent !== 'Loading…');
      const unlabelled = await page.evaluate(() => Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
        .filter((e) => (e as HTMLInputElement).labels?.length === 0 && !e.getAttribute('aria-label')).map((e) => e.id || e.outerHTML));
      assert.deepEqual(unlabelled, [], name);
    }
  });

  it('is readable at a phone width, signs out, and logged no page errors', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click('nav >> text=Runs');
    await page.waitForSelector('[data-chart="loss"] canvas');
    await shot('runs-phone');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `page is ${overflow}px wider than the phone`);
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.click('button:text("Sign out")');
    await page.waitForURL(/\/ui\/login\?signed_out=1$/);
    await page.goto(`${base}/ui/keys`);
    assert.equal(new URL(page.url()).pathname, '/ui/login');
    assert.deepEqual(pageErrors.filter((e) => !/status of 40[13]/.test(e)), []);
  });
});
