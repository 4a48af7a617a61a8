import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import type { RequestPageView } from '../src/ui/view.ts';
import { startHarness, type Harness } from './support/harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.log(`skipping the UI browser tests: ${CHROMIUM} is absent (apt-get install -y chromium)`);

const root = join(import.meta.dirname, '..');
const PIPELINE_ORDER = ['INIT', 'FFMPEG0', 'LIBROSA', 'CLIP', 'FANOUT', 'DETECT', 'COMPLETED'];

let h: Harness;
let browser: Browser;
let server: HttpServer;
let base: string;

/** The UI as `fave serve` serves it, with the artifact route its pictures and clips come from. */
async function serveUi(harness: Harness): Promise<HttpServer> {
  return startHttpServer({ app: harness.app, port: 0, host: '127.0.0.1', processMetrics: false });
}

async function apiView(id: string): Promise<RequestPageView> {
  const response = await fetch(`${base}/ui/api/requests/${id}`);
  expect(response.status).toBe(200);
  return (await response.json()) as RequestPageView;
}

/** Runs in the page before its own script: records every state it marks current, in order. */
const RECORD_CURRENT_STATES = `
  window.seenStates = [];
  new MutationObserver(function (mutations) {
    for (const m of mutations) {
      const el = m.target;
      if (el.getAttribute('data-machine') === 'pipeline' && el.getAttribute('data-current') === 'true') {
        const state = el.getAttribute('data-state');
        if (window.seenStates[window.seenStates.length - 1] !== state) window.seenStates.push(state);
      }
    }
  }).observe(document, { attributes: true, attributeFilter: ['data-current'], subtree: true });
`;

/** Records the page's fetch calls as it makes them, so that none having been made can be read at once. */
const RECORD_FETCHES = `
  window.fetchedUrls = [];
  const pageFetch = window.fetch;
  window.fetch = function (input, init) {
    window.fetchedUrls.push(String(input));
    return pageFetch.call(this, input, init);
  };
`;

/** Page errors and console errors (CSP violations show up there) fail the test. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  return errors;
}

describe.skipIf(!hasChromium)('the UI in headless Chromium', () => {
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    h = await startHarness({ gateway: { clips: 10, framesPerClip: 2, latencyMs: 3, coldStartEvery: 9 }, env: { MAX_CONCURRENT_INVOCATIONS: '4' } });
    server = await serveUi(h);
    base = server.url;
    // The live feed starts with the first UI request; make that before any request runs.
    await fetch(`${base}/ui`);
    await mkdir(join(root, 'test-artifacts'), { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close(200);
    await h?.close();
  });

  it('shows one bar per invocation of a finished 10-clip request', async () => {
    h.gateway.addFault({ stage: 'ffmpeg2', clip: 3, requestId: 'ui-ten', kind: 'status', status: 503, times: 1 });
    h.gateway.addFault({ stage: 'detector', clip: 7, frame: 1, requestId: 'ui-ten', kind: 'status', status: 502, times: 1 });
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, query: 'find scenes with cars', request_id: 'ui-ten' })).done;
    expect(outcome.status).toBe('COMPLETED');
    const view = await apiView('ui-ten');
    expect(view.invocations).toHaveLength(outcome.result.metrics.invocations);
    expect(view.invocations).toHaveLength(3 + 10 * 3 + 10 * 2 + 2);

    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors = watchErrors(page);
    await page.goto(`${base}/ui/requests/ui-ten`);
    await page.waitForSelector('[data-invocation]');
    const keys = await page.locator('[data-invocation]').evaluateAll((els) => els.map((e) => e.getAttribute('data-invocation')));
    expect(keys.sort()).toEqual(view.invocations.map((i) => i.key).sort());
    expect(await page.locator('.inv.retry').count()).toBe(2);
    expect(await page.locator('.inv.outcome-error').count()).toBe(2);
    expect(await page.locator('.inv.cold-start').count()).toBe(outcome.result.metrics.cold_starts);
    expect(await page.locator('.inv.critical').count()).toBe(view.timeline.critical_path.length);
    expect(await page.locator('[data-invocation="stage-object-detector|7|1|2"] title').textContent()).toContain('attempt 2');
    expect(await page.locator('.sc-state[data-machine="pipeline"][data-current="true"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-state')))).toEqual(['COMPLETED']);
    expect(await page.locator('#status').textContent()).toBe('COMPLETED');
    expect(await page.locator('#clips-text').textContent()).toBe('10 of 10 clips done');
    await page.screenshot({ path: join(root, 'test-artifacts/ui-request.png'), fullPage: true });

    await page.goto(`${base}/ui`);
    await page.locator('a[data-request="ui-ten"]').click();
    await page.waitForURL(`${base}/ui/requests/ui-ten`);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('highlights the current state of a running request and follows it as it advances', async () => {
    // Slow steps keep the request in CLIP, then in DETECT.detecting, long enough to be seen.
    h.gateway.addFault({ stage: 'ffmpeg1', requestId: 'ui-running', kind: 'slow', ms: 3500, times: 1 });
    h.gateway.addFault({ stage: 'detector', clip: 0, frame: 0, requestId: 'ui-running', kind: 'slow', ms: 2000, times: 1 });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors = watchErrors(page);
    await page.addInitScript({ content: RECORD_CURRENT_STATES });
    const handle = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'ui-running' });
    await page.goto(`${base}/ui/requests/ui-running`);
    const current = '.sc-state[data-machine="pipeline"][data-current="true"]';
    await page.waitForSelector(current);
    expect(await page.locator('#status').textContent()).toBe('RUNNING');
    await page.waitForSelector(`${current}[data-state="DETECT.detecting"]`, { timeout: 20_000 });
    const barsWhileDetecting = await page.locator('[data-invocation]').count();
    await page.waitForSelector(`${current}[data-state="COMPLETED"]`, { timeout: 20_000 });
    await page.waitForFunction("document.querySelector('#status').textContent === 'COMPLETED'");
    const outcome = await handle.done;
    expect(outcome.status).toBe('COMPLETED');

    const seen = (await page.evaluate('window.seenStates')) as string[];
    const topLevel = seen.map((s) => s.split('.')[0]!).filter((s, i, all) => all[i - 1] !== s);
    // In pipeline order, starting before the fan-out and ending COMPLETED.
    expect(topLevel.map((s) => PIPELINE_ORDER.indexOf(s))).toEqual([...topLevel.map((s) => PIPELINE_ORDER.indexOf(s))].sort((a, b) => a - b));
    expect(PIPELINE_ORDER.indexOf(topLevel[0]!)).toBeLessThanOrEqual(PIPELINE_ORDER.indexOf('CLIP'));
    expect(seen).toContain('DETECT.detecting');
    expect(topLevel.at(-1)).toBe('COMPLETED');
    expect(await page.locator(current).count()).toBe(1);
    // The timeline grew while it ran and ends with every invocation.
    const finalBars = await page.locator('[data-invocation]').count();
    expect(barsWhileDetecting).toBeLessThan(finalBars);
    expect(finalBars).toBe(outcome.result.metrics.invocations);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('writes `fave report` as one file that opens offline with the same bars', async () => {
    if (!(await h.app.orchestrator.requests.view('ui-ten'))) {
      await (
        await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'ui-ten' })
      ).done;
    }
    const view = await apiView('ui-ten');
    const file = join(h.dir, 'report.html');
    const run = promisify(execFile);
    const { stderr } = await run(join(root, 'node_modules/.bin/tsx'), [join(root, 'src/cli/main.ts'), 'report', 'ui-ten', '-o', file], {
      cwd: root,
      env: { ...process.env, ...h.env },
    });
    expect(stderr).toContain(file);

    const context = await browser.newContext({ offline: true, viewport: { width: 1400, height: 1000 } });
    await context.clock.install();
    await context.addInitScript({ content: RECORD_FETCHES });
    const requests: string[] = [];
    context.on('request', (request) => requests.push(request.url()));
    const page = await context.newPage();
    const errors = watchErrors(page);
    const url = pathToFileURL(file).href;
    await page.goto(url);
    await page.waitForSelector('[data-invocation]');
    const keys = await page.locator('[data-invocation]').evaluateAll((els) => els.map((e) => e.getAttribute('data-invocation')));
    expect(keys.sort()).toEqual(view.invocations.map((i) => i.key).sort());
    expect(await page.locator('.sc-state[data-machine="pipeline"][data-current="true"]').getAttribute('data-state')).toBe('COMPLETED');
    expect(await page.locator('#live-note').textContent()).toMatch(/^report taken /);
    // A report never polls: once the page's clock has run twenty poll periods on, every timer it
    // set has fired, and none of them fetched anything or reloaded the page.
    await page.evaluate('window.firstDocument = true');
    await page.clock.runFor(10_000);
    expect(await page.evaluate('window.fetchedUrls')).toEqual([]);
    expect(await page.evaluate('window.firstDocument === true')).toBe(true);
    expect(requests).toEqual([url]);
    expect(errors).toEqual([]);
    await context.close();
  });
});
