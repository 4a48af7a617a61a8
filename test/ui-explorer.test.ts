import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../src/app.ts';
import { renderReport } from '../src/cli/commands/report.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import { createLocalStages } from '../src/stages/local/index.ts';
import { LocalTransport } from '../src/stages/local/local-transport.ts';
import { makeToneBurstVideo } from './support/media.ts';
import { until } from './support/until.ts';

/**
 * The explorer end to end in headless Chromium: a video uploaded through the form on /ui, run by
 * the local stages with a scripted speech engine, shown as ranked match cards with thumbnails
 * and playable clips, and written as an offline report.
 */

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const root = join(import.meta.dirname, '..');

// Speech at three stretches of different lengths, so the scripted engine can tell them apart,
// with silent stretches between them that become clips of their own.
const BURSTS: Array<[number, number]> = [
  [0, 2],
  [3.5, 6],
  [7.5, 12],
];
const XSS = '<img src=x onerror=window.__xss=1>';
const SPEECH = `#!/bin/sh
n=$(wc -c < "$1")
if [ "$n" -lt 72000 ]; then echo "a red car passes the house"
elif [ "$n" -lt 100000 ]; then echo "the dog barks at a car"
else echo "a quiet street at night ${XSS}"; fi
`;

let dir: string;
let app: App;
let server: HttpServer;
let browser: Browser;
let base: string;
let requestId: string;

function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('dialog', (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`);
  });
  return errors;
}

/** Every thumbnail of the page has loaded a real picture. */
async function thumbnailsLoaded(page: Page): Promise<{ count: number; broken: string[] }> {
  await until(() => page.evaluate("[...document.querySelectorAll('img.thumb')].every((i) => i.complete)"), { timeoutMs: 20_000, message: 'thumbnails to load' });
  return (await page.evaluate(`(() => {
    const images = [...document.querySelectorAll('img.thumb')];
    return { count: images.length, broken: images.filter((i) => i.naturalWidth === 0).map((i) => i.src.slice(0, 80)) };
  })()`)) as { count: number; broken: string[] };
}

describe.skipIf(!hasChromium)('the video explorer in headless Chromium', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fave-explorer-'));
    const video = join(dir, 'street.mp4');
    await makeToneBurstVideo(video, { bursts: BURSTS, duration: 12, size: '320x240' });
    const speech = join(dir, 'speech.sh');
    await writeFile(speech, SPEECH);
    await chmod(speech, 0o755);
    const env = { FAVE_DATA_DIR: join(dir, 'data'), ARTIFACT_BUCKET: 'fave-artifacts', LOG_LEVEL: 'silent', OPENFAAS_SECRETS_DIR: join(dir, 'none') };
    await mkdir(join(dir, 'work'));
    const store = new FsStore(join(dir, 'data'), 'fave-artifacts');
    const transport = new LocalTransport(createLocalStages({ store, speechCommand: `${speech} {wav}`, detectorModel: null, frameFps: 2, workRoot: join(dir, 'work') }));
    app = await createApp({ env, transport, logger: pino({ level: 'silent' }) });
    await app.store.init();
    server = await startHttpServer({ app, port: 0, host: '127.0.0.1', processMetrics: false });
    base = server.url;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--autoplay-policy=no-user-gesture-required',
      ],
    });
    // The form on /ui uploads the file and starts the request.
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(`${base}/ui`);
    await page.setInputFiles('#f-file', video);
    await page.fill('#f-query', 'red car');
    await page.click('#f-submit');
    await page.waitForURL(/\/ui\/requests\/[^/]+$/, { timeout: 30_000 });
    requestId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
    await page.waitForSelector('body:not([data-status="RUNNING"])', { timeout: 90_000 });
    // The page opened while the request ran: its answer is redrawn to the final one.
    await page.waitForSelector('#answer[data-verdict="match"] #matches .card', { timeout: 10_000 });
    expect(errors).toEqual([]);
    await page.close();
  }, 150_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close(200);
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows the match cards in score order, every thumbnail loaded, transcripts as text', async () => {
    const result = await app.orchestrator.requests.readResult(requestId);
    expect(result?.status).toBe('COMPLETED');
    expect(result!.video_uri).toMatch(/^s3:\/\/fave-artifacts\/uploads\/[0-9a-f]+\/street\.mp4$/);
    expect(result!.matches.length).toBe(2);
    // The silent stretches are clips too, marked as such.
    expect(result!.clips.filter((c) => c.transcript_note?.includes('no speech in this clip'))).toHaveLength(2);

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = watchErrors(page);
    await page.goto(`${base}/ui/requests/${requestId}`);
    expect(await page.locator('#verdict').textContent()).toBe(`${result!.matches.length} of ${result!.clips.length} clips match`);
    const cards = await page
      .locator('#matches .card')
      .evaluateAll((els) => els.map((e) => ({ clip: Number(e.getAttribute('data-clip')), score: Number(e.getAttribute('data-score')) })));
    expect(cards.map((c) => c.clip)).toEqual(result!.matches.map((m) => m.clip_index));
    expect(cards.map((c) => c.score)).toEqual([...cards.map((c) => c.score)].sort((a, b) => b - a));
    expect(await page.locator('#others .card').count()).toBe(result!.clips.length - result!.matches.length);
    expect(await page.locator('#strip .seg-match').count()).toBe(result!.matches.length);
    // Highlighted words, and the transcript's markup shown as text.
    expect(await page.locator('#matches .card').first().locator('mark').allTextContents()).toEqual(['red', 'car']);
    expect(await page.locator('#others .transcript').filter({ hasText: 'a quiet street' }).textContent()).toContain(XSS);
    expect(await page.locator('.transcript img').count()).toBe(0);
    expect(await page.evaluate('window.__xss')).toBeUndefined();

    const thumbs = await thumbnailsLoaded(page);
    expect(thumbs.count).toBeGreaterThanOrEqual(result!.clips.length);
    expect(thumbs.broken).toEqual([]);
    // The README's picture: regenerated with FAVE_UPDATE_SCREENSHOTS=1, else kept out of the tree.
    await mkdir(join(root, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: join(root, process.env.FAVE_UPDATE_SCREENSHOTS === '1' ? 'docs/request-page.png' : 'test-artifacts/request-page.png') });
    expect(errors).toEqual([]);
    await page.close();
  });

  it("plays and seeks a clip's video through the artifact route (206)", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const ranged: number[] = [];
    page.on('response', (r) => {
      if (/\/artifacts\/clip-\d+$/.test(r.url())) ranged.push(r.status());
    });
    await page.goto(`${base}/ui/requests/${requestId}`);
    const video = page.locator('#matches .card video').first();
    await video.evaluate(`(v) => { v.muted = true; v.preload = 'auto'; v.load(); }`);
    await until(() => page.evaluate("document.querySelector('#matches .card video').readyState >= 2"), { timeoutMs: 20_000, message: 'the clip video to reach readyState 2' });
    const seeked = (await page.evaluate(`new Promise((resolve, reject) => {
      const v = document.querySelector('#matches .card video');
      const timer = setTimeout(() => reject(new Error('no seeked event')), 15_000);
      v.addEventListener('seeked', () => { clearTimeout(timer); resolve(v.currentTime); }, { once: true });
      v.currentTime = 1.2;
    })`)) as number;
    expect(seeked).toBeCloseTo(1.2, 0);
    expect(ranged).toContain(206);
    // Clicking a strip segment plays its clip.
    await page.locator('#strip .seg-match').first().click();
    await page.waitForSelector('.card.playing');
    await page.close();
  });

  it('writes the same page as an offline report with its thumbnails embedded', async () => {
    const report = await renderReport(app.orchestrator, requestId);
    expect(report).not.toBeNull();
    expect(report!.leftOut).toBe(0);
    const file = join(dir, 'report.html');
    await writeFile(file, report!.html);
    expect(report!.html.includes('a quiet street at night &lt;img src=x onerror=window.__xss=1&gt;')).toBe(true);
    expect(report!.html.includes('<img src=x')).toBe(false);

    const context = await browser.newContext({ offline: true, viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    context.on('request', (r) => {
      if (!r.url().startsWith('data:')) requests.push(r.url());
    });
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(pathToFileURL(file).href);
    const thumbs = await thumbnailsLoaded(page);
    expect(thumbs.count).toBe(report!.embedded);
    expect(thumbs.count).toBeGreaterThan(0);
    expect(thumbs.broken).toEqual([]);
    expect(await page.locator('video').count()).toBe(0);
    expect(await page.locator('#matches .card').count()).toBe(report!.view.answer.matches.length);
    expect(await page.evaluate('window.__xss')).toBeUndefined();
    expect(requests).toEqual([pathToFileURL(file).href]);
    expect(errors).toEqual([]);
    await context.close();

    // Bounded: with room for one picture only, the rest are left out and the report says so.
    const small = await renderReport(app.orchestrator, requestId, { maxEmbedBytes: 1 });
    expect(small!.embedded).toBe(0);
    expect(small!.html).toMatch(/\d+ of \d+ thumbnails are left out of this report/);
  });
});
