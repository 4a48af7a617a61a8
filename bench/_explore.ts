import { startHarness } from '../test/support/harness.ts';
const clips = Number(process.argv[2] ?? 1000), frames = Number(process.argv[3] ?? 10), lat = Number(process.argv[4] ?? 20);
const h = await startHarness({ gateway: { clips, framesPerClip: frames, latencyMs: lat }, env: { MAX_CONCURRENT_INVOCATIONS: '64' } });
const t0 = performance.now();
const handle = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'x' });
const out = await handle.done;
const t1 = performance.now();
console.log(out.status, (t1 - t0).toFixed(0), 'ms', h.gateway.calls.length, 'calls', 'maxconc', h.gateway.maxConcurrent, 'stateBytes', h.app.orchestrator.stateBytes, 'rss', process.resourceUsage().maxRSS/1024);
await h.close();
