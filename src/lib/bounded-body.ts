import type { Readable } from 'node:stream';

/** Thrown when a body grows past its cap; reading stops there. */
export class BodyTooLarge extends Error {
  constructor(readonly limitBytes: number) {
    super(`the body is larger than ${limitBytes} bytes`);
    this.name = 'BodyTooLarge';
  }
}

/**
 * Reads a body as UTF-8 text, never holding more than `limitBytes` of it: past the cap the
 * stream is destroyed and BodyTooLarge thrown.
 */
export async function readTextCapped(body: Readable, limitBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    if (size > limitBytes) {
      body.destroy();
      throw new BodyTooLarge(limitBytes);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}
