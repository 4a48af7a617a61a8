import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // s3rver signs its ListObjectsV2 continuation tokens with DES, which OpenSSL 3 keeps in its
    // legacy provider; without it, listing past one page (1,000 keys) fails on the test endpoint.
    execArgv: ['--openssl-legacy-provider'],
    // The AWS SDK's notice about its future Node 22 requirement, once per worker, is noise here.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    reporters: ['default'],
  },
});
