// Races the parent for the same objects: argv is the store's root, bucket, key prefix and how
// many keys. It says "ready" once its store writes, starts at a line on stdin, and prints which
// keys it created.
import { createInterface } from 'node:readline';
import { FsStore } from '../../src/persistence/fs-store.ts';

const [root, bucket, prefix, count] = process.argv.slice(2);
const store = new FsStore(root!, bucket!);
await store.init();
// The records' group: the prefix up to its last folder.
const group = prefix!.slice(0, prefix!.lastIndexOf('/') + 1);
await store.createIfAbsent({ bucket: bucket!, key: `${prefix}warm-child.json` }, 'warm', group);
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line === 'go') break;
const keys = Array.from({ length: Number(count) }, (_, i) => `${prefix}${i}/r0-a1.json`);
const outcomes = await Promise.all(keys.map((key) => store.createIfAbsent({ bucket: bucket!, key }, `child ${key}`, group)));
process.stdout.write(`${JSON.stringify(keys.filter((_, i) => outcomes[i]))}\n`);
await store.close();
lines.close();
