// Writes records into an fs store until killed: argv is the store's root, bucket and group. It
// writes batches of 32 records at once and prints each batch's keys once every write of the
// batch has resolved (acknowledged), one JSON array per line.
import { FsStore } from '../../src/persistence/fs-store.ts';

const [root, bucket, group] = process.argv.slice(2);
const store = new FsStore(root!, bucket!);
await store.init();
for (let batch = 0; ; batch++) {
  const keys = Array.from({ length: 32 }, (_, i) => `${group}frame-${batch}-${i}/r0-a1.json`);
  const outcomes = await Promise.all(keys.map((key) => store.createIfAbsent({ bucket: bucket!, key }, `record of ${key} ${'x'.repeat(200)}`, group!)));
  if (!outcomes.every(Boolean)) throw new Error(`batch ${batch}: a key existed already`);
  process.stdout.write(`${JSON.stringify(keys)}\n`);
}
