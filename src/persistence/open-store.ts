import type { Config } from '../config.ts';
import { FsStore } from './fs-store.ts';
import { S3Store } from './s3-store.ts';
import type { Store } from './store.ts';

/** The configured store, not yet probed: call `init()` before use. */
export function openStore(config: Config['store']): Store {
  if (config.kind === 'fs') return new FsStore(config.dataDir, config.bucket);
  return new S3Store({
    bucket: config.bucket,
    endpoint: config.endpoint,
    region: config.region,
    accessKeyId: config.accessKeyId,
    secretAccessKey: config.secretAccessKey,
  });
}
