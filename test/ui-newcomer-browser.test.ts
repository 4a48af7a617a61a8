import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.ts';
import { startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { until } from './support/until.ts';

/** The request page and the request form as a newcomer first read them, in headless Chromium. */

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.log(`skipping the newcomer UI tests: ${CHROMIUM} is absent (apt-get install -y chromium)`);

let h: Harness;
let browser: Browser;
let server: HttpServer;
let base: string;

describe.skipIf(!hasChromium)('the request page and form, as a newcomer reads them', () => {
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    h = await startHarness({
      gateway: { clips: 6, framesPerClip: 1, transcript: () => 'Dummy transcript: no speech engine configured' },
    });
    server = await startHttpServer({ app: h.app, port: 0, host: '127.0.0.1', processMetrics: false });
    base = server.url;
    await fetch(`${base}/ui`);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close(200);
    await h?.close();
  });

  it('a running request: the headline and the progress bar count the same clips; the caption has no markup', async () => {
    // Slow librosa: the page opens before the clips are known. Then every clip hangs at ffmpeg-2: none is done.
    h.gateway.addFault({ stage: 'librosa', requestId: 'ui-counts', kind: 'slow', ms: 1500, times: 1 });
    h.gateway.addFault({ stage: 'ffmpeg2', requestId: 'ui-counts', kind: 'hang' });
    const handle = await h.app.orchestrator.submit({ video_uri: h.videoUri, query: 'find scenes with cars', request_id: 'ui-counts' });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    try {
      await page.goto(`${base}/ui/requests/ui-counts`);
      expect(await page.locator('#verdict').textContent()).toBe('running: finding the clips in the video');
      // The live page redraws the headline once the clips are known, though none is done yet.
      await until(async () => (await page.locator('#verdict').textContent()) === 'running: 0 of 6 clips done' || null, {
        timeoutMs: 20_000,
        message: 'the headline counts the 6 clips',
      });
      expect(await page.locator('#clips-text').textContent()).toBe('0 of 6 clips done');
      const text = await page.locator('main').innerText();
      expect(text).not.toContain('data-current');
      expect(text).toContain('The current state is highlighted');
    } finally {
      await page.close();
      h.gateway.clearFaults();
      h.app.orchestrator.cancel('ui-counts');
      await handle.done.catch(() => undefined);
    }
  });

  it('a finished request says "no speech engine configured" once, not under every clip', async () => {
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'ui-notes' })).done;
    expect(outcome.status).toBe('COMPLETED');
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    try {
      await page.goto(`${base}/ui/requests/ui-notes`);
      await page.locator('#others summary').click();
      const text = await page.locator('#answer').innerText();
      expect(text.match(/no speech engine configured/g)).toHaveLength(1);
      expect(await page.locator('#request-notes').innerText()).toContain('no speech engine configured');
      expect(await page.locator('.card').count()).toBe(6);
    } finally {
      await page.close();
    }
  });

  it('the form explains the profiles and says local paths are refused', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    try {
      await page.goto(`${base}/ui`);
      const profiles = loadConfig({}).profiles;
      const notes = await page.locator('#f-profile-notes').innerText();
      for (const name of ['cold', 'warm', 'burst-ready']) {
        expect(notes).toContain(name);
        expect(notes).toContain(profiles[name]!.description!);
      }
      expect(await page.locator('#f-video-note').innerText()).toContain("paths on the server's disk are refused");
      expect(await page.locator('#f-video').getAttribute('aria-describedby')).toBe('f-video-note');
    } finally {
      await page.close();
    }
  });
});
