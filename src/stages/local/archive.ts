import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import * as tar from 'tar-stream';

/**
 * The .tar.gz archives the stages hand each other. Members are flat file names; both ways
 * stream through disk so a long video never has to fit in memory.
 */

export interface ArchiveMember {
  /** Name inside the archive, e.g. `video.mp4`. */
  name: string;
  /** File on disk holding its bytes. */
  path: string;
}

export async function packTarGz(members: readonly ArchiveMember[], destination: string): Promise<void> {
  const pack = tar.pack();
  const writing = pipeline(pack, createGzip(), createWriteStream(destination));
  try {
    for (const member of members) {
      const { size } = await stat(member.path);
      await new Promise<void>((resolve, reject) => {
        const entry = pack.entry({ name: member.name, size, mode: 0o644, mtime: new Date() }, (err) => (err ? reject(err) : resolve()));
        const source = createReadStream(member.path);
        source.on('error', reject);
        source.pipe(entry);
      });
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await writing.catch(() => undefined);
    throw err;
  }
  await writing;
}

/** The archive is not a readable .tar.gz, or a member name is unsafe. */
export class ArchiveError extends Error {
  override name = 'ArchiveError';
}

/** Extracts the regular files into `directory` and returns their (base) names. */
export async function unpackTarGz(archive: string, directory: string): Promise<string[]> {
  await mkdir(directory, { recursive: true });
  const extract = tar.extract();
  const names: string[] = [];
  const reading = pipeline(createReadStream(archive), createGunzip(), extract);
  // Without this a failing pipeline would leave the loop below waiting forever.
  reading.catch((err: unknown) => extract.destroy(err as Error));
  try {
    for await (const entry of extract) {
      if (entry.header.type !== 'file' && entry.header.type !== 'contiguous-file') {
        entry.resume();
        continue;
      }
      const name = safeMemberName(entry.header.name);
      await pipeline(entry, createWriteStream(join(directory, name)));
      names.push(name);
    }
    await reading;
  } catch (err) {
    if (err instanceof ArchiveError) throw err;
    throw new ArchiveError(`not a readable .tar.gz archive: ${(err as Error).message}`);
  }
  return names;
}

/** Members in sub-folders are taken by their base name; nothing may climb out of the folder. */
export function safeMemberName(raw: string): string {
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  const name = parts.at(-1) ?? '';
  if (raw.startsWith('/') || parts.includes('..') || !/^[A-Za-z0-9_.-]+$/.test(name) || /^\.+$/.test(name)) {
    throw new ArchiveError(`archive member name not accepted: ${JSON.stringify(raw)}`);
  }
  return name;
}
