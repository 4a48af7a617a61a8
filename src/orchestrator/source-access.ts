import type { Config } from '../config/config.ts';
import type { PrivateNetworkAccess, SourceAccess, SourcePolicy } from '../input/import.ts';

/**
 * What the caller's surface allows for this start or resume. Never stored: a resumed request
 * gets the permissions of the process and surface that resume it, whatever state.json says.
 */
export interface SubmitOptions {
  /** Accept a local path as video_uri (the CLI; never a network-facing surface). Default no. */
  allowLocalPath?: boolean;
  /**
   * Fetch http(s) inputs from loopback/private/link-local addresses (`except-link-local`: not
   * from link-local or cloud metadata ones). Default `ALLOW_PRIVATE_SOURCES`.
   */
  allowPrivateNetwork?: PrivateNetworkAccess;
}

/**
 * Per request this process starts: the source as submitted (signature included, which state.json
 * never holds) and the policy its input is imported under. Kept in memory only, while it runs here.
 */
export class SourceAccesses {
  private readonly accesses = new Map<string, SourceAccess>();

  constructor(private readonly config: Config) {}

  /** The policy of this process, narrowed or widened by what the calling surface allows. */
  policy(options: SubmitOptions): SourcePolicy {
    const { config } = this;
    return {
      allowLocalPath: options.allowLocalPath ?? false,
      allowPrivateNetwork: options.allowPrivateNetwork ?? config.allowPrivateSources,
      s3: { artifactBucket: config.bucket, rules: config.inputS3Rules },
      maxBytes: config.maxInputBytes,
    };
  }

  set(requestId: string, access: SourceAccess): void {
    this.accesses.set(requestId, access);
  }

  /** The request's access; without one (say, resumed by a sweep), no source and the process's own policy. */
  of(requestId: string): SourceAccess {
    return this.accesses.get(requestId) ?? { source: null, policy: this.policy({}) };
  }

  forget(requestId: string): void {
    this.accesses.delete(requestId);
  }
}
