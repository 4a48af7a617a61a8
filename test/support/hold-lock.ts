// Takes the filesystem store's lock at argv[2] and holds it until killed.
import { withFileLock } from '../../src/persistence/fs-lock.ts';

// The lock's heartbeat does not keep a process alive; this does.
setInterval(() => undefined, 60_000);
await withFileLock(process.argv[2]!, () => {
  process.stdout.write('locked\n');
  return new Promise<never>(() => undefined);
});
