import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { extract, pack } from 'tar-stream';

/** Builds a gzip-compressed tar holding `files` (member name → content), as the stages write. */
export async function makeTarGz(files: Record<string, Buffer | string>): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  // Drain while entries are added so a large member cannot stall on backpressure.
  const done = pipeline(tar, createGzip(), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) chunks.push(chunk);
  });
  for (const [name, content] of Object.entries(files)) {
    const body = typeof content === 'string' ? Buffer.from(content) : content;
    await new Promise<void>((resolve, reject) => {
      tar.entry({ name, size: body.length, mtime: new Date(0), mode: 0o644 }, body, (err) => (err ? reject(err) : resolve()));
    });
  }
  tar.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Reads every regular file of a .tar.gz back into memory (member name → bytes). */
export async function readTarGz(archive: Buffer): Promise<Record<string, Buffer>> {
  const files: Record<string, Buffer> = {};
  const tar = extract();
  const consume = (async () => {
    for await (const entry of tar) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      if (entry.header.type === 'file' || entry.header.type === undefined) files[entry.header.name] = Buffer.concat(chunks);
    }
  })();
  await Promise.all([pipeline(Readable.from([archive]), createGunzip(), tar), consume]);
  return files;
}
