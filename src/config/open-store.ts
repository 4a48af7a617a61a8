import type { Config } from './config.ts';
import { FsStore } from '../persistence/fs-store.ts';
import type { Store } from '../persistence/store.ts';

/**
 * The configured store, not yet probed: call `init()` before use. The S3 client is loaded only
 * when it is configured, so the embedded default does not carry the AWS SDK in memory.
 */
export async function openStore(config: Config['store']): Promise<Store> {
  if (config.kind === 'fs') return new FsStore(config.dataDir, config.bucket, config.lockLeaseMs === undefined ? {} : { lockLeaseMs: config.lockLeaseMs });
  const { S3Store } = await import('../persistence/s3-store.ts');
  return new S3Store({
    bucket: config.bucket,
    endpoint: config.endpoint,
    region: config.region,
    accessKeyId: config.accessKeyId,
    secretAccessKey: config.secretAccessKey,
  });
}
