import { timeResume } from './resume.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
const store = new FsStore('/tmp/scratch/x', 'fave-artifacts');
for (const f of ['/tmp/scratch/final.json', '/tmp/scratch/inflight.json']) {
  try { console.log(f, await timeResume(f, store, 1)); } catch (e) { console.log(f, 'FAILED', (e as Error).message); }
}
