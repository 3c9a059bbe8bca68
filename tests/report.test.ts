/**
 * `trellis-ci report --out report.html`, opened in headless Chromium (Debian's
 * chromium driven by playwright-core): the tree, the boundary matrix and the
 * expiry timeline render with the store's real values, the page requests
 * nothing but itself, hostile store strings stay text, and a screenshot is
 * kept as an artifact (test-results/report.png).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

// Chromium under libfaketime (scripts/test-ahead.sh) takes most of a minute for a page: every timer goes through it.
const SLOW = process.env.TRELLIS_TEST_AHEAD ? 4 : 1;
vi.setConfig({ testTimeout: 60_000 * SLOW });
import { renderReportHtml, reportInput, verifyMesh } from '@trellis/core';
import { Store, loadMesh, storeReader } from '@trellis/core/store';
import { FakeMesh } from './helpers/fake-mesh.js';
import { REPO, tool } from './helpers/cli.js';
import { HOUR, RUN_NOW, at } from './helpers/clock.js';

const NOW = at(RUN_NOW);
const AT = at(RUN_NOW, HOUR);
const HOSTILE = '<img src=x onerror=alert(1)>';
const SCOPES = ['global', 'us-east-1', 'eu-west-1'];
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-report-'));
const out = path.join(scratch, 'report.html');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
let m: FakeMesh;
let browser: Browser;
let page: Page;
const requests: string[] = [];

beforeAll(async () => {
  m = await FakeMesh.create({
    scopes: { global: ['control'], 'us-east-1': ['api', 'web'], 'eu-west-1': ['api'] },
    now: NOW,
  });
  // A rotation under way, so the tree shows two roles and the rotations table a gate.
  expect((await m.root(['rotate', 'intermediate', 'us-east-1', '--now', AT, '--now-ahead'])).code).toBe(0);
  // Strings a pull request or a CI variable controls: an actor in the ledger, a directory name in a finding.
  const rv = await m.ci(['revoke', 'us-east-1/web', '--now', AT, '--now-ahead'], { TRELLIS_ACTOR: HOSTILE });
  expect(rv.code, rv.stderr).toBe(0);
  fs.mkdirSync(m.path(`bundles/${HOSTILE}`));
  const r = await m.ci(['report', '--out', out, '--now', AT, '--now-ahead']);
  expect(r.code, r.stderr).toBe(0);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(30_000 * SLOW);
  page.on('request', (req) => requests.push(req.url()));
  await page.goto(`file://${out}`);
});
afterAll(async () => {
  await browser?.close();
});

// The page shows serials as OpenSSL prints them.
const serialOf = async (rel: string) =>
  (await tool('openssl', ['x509', '-in', m.path(rel), '-noout', '-serial'])).stdout.trim().split('=')[1]!;
const notAfterOf = async (rel: string) =>
  new Date(
    (await tool('openssl', ['x509', '-in', m.path(rel), '-noout', '-enddate'])).stdout.trim().split('=')[1]!,
  ).toISOString();

describe('the report in Chromium', () => {
  it('requests nothing but the file itself, and forbids every fetch by CSP', async () => {
    expect(requests).toEqual([`file://${out}`]);
    expect(await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content')).toBe(
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    );
    expect(await page.locator('script').count()).toBe(0);
  });

  it("the tree: root → each scope's intermediates (with roles) → services, with the store's serials", async () => {
    const rootSerial = await serialOf('bundles/root/root.pem');
    expect(await page.locator(`#tree .root[data-serial="${rootSerial}"]`).count()).toBe(1);
    for (const s of SCOPES) {
      const inter = page.locator(
        `#tree .inter[data-scope="${s}"][data-serial="${await serialOf(`bundles/${s}/intermediate.pem`)}"]`,
      );
      await expect.poll(() => inter.count()).toBe(1);
      expect(await inter.textContent()).toMatch(new RegExp(`${s}\\s*active`));
      for (const [service, rec] of Object.entries(
        parse(m.read(`bundles/${s}/leaves.yaml`)) as Record<string, { serial: string; notAfter: string }>,
      )) {
        const node = page.locator(`#tree [data-service="${s}/${service}"][data-serial="${rec.serial.toUpperCase()}"]`);
        expect(await node.count(), `${s}/${service}`).toBe(1);
        expect(await node.isVisible()).toBe(true);
      }
    }
    const nextSerial = await serialOf('bundles/us-east-1/intermediate.next.pem');
    const next = page.locator(`#tree .inter[data-scope="us-east-1"][data-serial="${nextSerial}"]`);
    expect(await next.textContent()).toMatch(/us-east-1\s*next/);
  });

  it("the matrix: each cell is what the scope's trust.pem actually holds", async () => {
    const inter = (s: string) => m.read(`bundles/${s}/intermediate.pem`).trim();
    for (const verifier of SCOPES) {
      for (const issuer of SCOPES) {
        const held = m.read(`bundles/${verifier}/trust.pem`).includes(inter(issuer));
        const cell = page.locator(`#matrix td[data-verifier="${verifier}"][data-issuer="${issuer}"]`);
        expect(await cell.textContent(), `${verifier} → ${issuer}`).toBe(held ? '✓' : '✗');
      }
    }
    // The boundary as it should read, from the bundles: regions do not trust each other.
    expect(await page.locator('#matrix td[data-verifier="us-east-1"][data-issuer="eu-west-1"]').textContent()).toBe(
      '✗',
    );
  });

  it('the timeline: one drawn bar per certificate, at its real not-after date', async () => {
    for (const s of SCOPES) {
      for (const [service, rec] of Object.entries(
        parse(m.read(`bundles/${s}/leaves.yaml`)) as Record<string, { serial: string; notAfter: string }>,
      )) {
        const bar = page.locator(`#timeline-leaves g.bar[data-serial="${rec.serial.toUpperCase()}"]`);
        expect(Date.parse((await bar.getAttribute('data-not-after'))!), `${s}/${service}`).toBe(
          Date.parse(rec.notAfter),
        );
        expect(await bar.textContent()).toContain(new Date(rec.notAfter).toISOString().slice(0, 16).replace('T', ' '));
        const box = await bar.locator('rect').boundingBox();
        expect(box!.width).toBeGreaterThan(10);
      }
      const caBar = page.locator(
        `#timeline-cas g.bar[data-serial="${await serialOf(`bundles/${s}/intermediate.pem`)}"]`,
      );
      expect(Date.parse((await caBar.getAttribute('data-not-after'))!)).toBe(
        Date.parse(await notAfterOf(`bundles/${s}/intermediate.pem`)),
      );
      expect((await caBar.locator('rect').boundingBox())!.width).toBeGreaterThan(10);
    }
    expect(await page.locator('#timeline-leaves .now').count()).toBe(1);
  });

  it("each rotation's phase and gate, the recent ledger, and verify's findings", async () => {
    const state = parse(m.read('bundles/us-east-1/state.yaml')) as { phase: string; rotation: { switchAt: string } };
    const row = page.locator('#rotations tr[data-scope="us-east-1"]');
    expect(await row.textContent()).toContain(state.phase);
    expect(await row.textContent()).toContain(`switch ${state.rotation.switchAt}`);
    expect(await page.locator('#ledger').textContent()).toMatch(/revoke/);
    expect(await page.locator('#findings').textContent()).toMatch(/has no scopes\//);
  });

  it('hostile store strings are shown as text, never as markup', async () => {
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('#ledger').textContent()).toContain(HOSTILE);
    expect(await page.locator('#findings').textContent()).toContain(HOSTILE);
    expect(fs.readFileSync(out, 'utf8')).not.toContain('<img');
  });

  it('keeps a screenshot as an artifact', async () => {
    const shot = path.join(REPO, 'test-results/report.png');
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
    expect(fs.statSync(shot).size).toBeGreaterThan(20_000);
  });
});

describe("the header colours verify's counts by their value", () => {
  it("0 error(s) is shown in the ok colour, never red; a count above 0 in its level's colour", async () => {
    const mesh = loadMesh(new Store(m.dir));
    const model = await reportInput(mesh, new Date(AT), await verifyMesh(mesh, new Date(AT), storeReader(mesh.dir)));
    const colours = async (findings: typeof model.findings) => {
      const p = await browser.newPage();
      p.setDefaultTimeout(30_000 * SLOW);
      try {
        await p.setContent(renderReportHtml({ ...model, findings }));
        const colour = (id: string) => p.locator(`#verify-${id}`).evaluate((el) => getComputedStyle(el).color);
        return {
          error: await colour('error'),
          warning: await colour('warning'),
          text: await p.locator('header p').textContent(),
        };
      } finally {
        await p.close();
      }
    };
    const RED = 'rgb(207, 34, 46)';
    const GREEN = 'rgb(26, 127, 55)';
    const clean = await colours(model.findings.filter((f) => f.level !== 'error' && f.level !== 'warning'));
    expect(clean.text).toContain('0 error(s), 0 warning(s)');
    expect(clean.error).toBe(GREEN);
    expect(clean.warning).toBe(GREEN);
    const failing = await colours([
      ...model.findings,
      { level: 'error', check: 'boundary', scope: 'us-east-1', message: 'x' },
    ]);
    expect(failing.error).toBe(RED);
  });
});

describe('the renderer escapes every store-derived string', () => {
  it('a scope and a service named like markup render as text in the tree, matrix, timeline and rotations', async () => {
    const mesh = loadMesh(new Store(m.dir));
    const model = await reportInput(mesh, new Date(AT), await verifyMesh(mesh, new Date(AT), storeReader(mesh.dir)));
    // Names a pull request might try, were the schema ever loosened: the renderer must not rely on it.
    const hostile = JSON.parse(
      JSON.stringify(model)
        .replaceAll('eu-west-1', HOSTILE.replaceAll('"', '\\"'))
        .replaceAll('"api"', JSON.stringify(`${HOSTILE}"'&`)),
    );
    const html = renderReportHtml(hostile);
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('&quot;&#39;&amp;');
  });
});
