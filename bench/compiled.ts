import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CompilerOptions } from 'typescript';

/**
 * The bench measures what ships: the image runs the JavaScript `tsc` emits into `dist/`, not
 * the TypeScript sources through tsx (whose loader thread is a second V8 isolate of about
 * 30 MB, and whose `keepNames` wrappers add a call to every named function). So the bench
 * first compiles the sources it runs (`src/`, `bench/`, `test/support/`) into a temp dir, with
 * the compiler options of the build, and runs everything from there.
 *
 * Each file is transpiled on its own (the sources are written for `isolatedModules`, so this
 * is the same JavaScript as the build's, without its type check, which `npm run typecheck`
 * does): a second or two instead of a whole-program compile.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** What the bench's processes import, relative to the repository root. */
const SOURCE_DIRS = ['src', 'bench', 'test/support'];
/** Kept as TypeScript: bundled at first use by `src/ui/scripts.ts` (the build bundles them instead). */
const COPIED_AS_IS = join('src', 'ui', 'browser');

export interface CompiledTree {
  /** Root of the compiled tree; `bench/run.js` in it is the bench. */
  dir: string;
  files: number;
  build_ms: number;
  remove(): Promise<void>;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(ROOT, dir), { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')).map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

export async function compileBench(): Promise<CompiledTree> {
  const started = performance.now();
  const { default: ts } = await import('typescript');
  const compilerOptions: CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    verbatimModuleSyntax: true,
    isolatedModules: true,
    esModuleInterop: true,
    allowImportingTsExtensions: true,
    rewriteRelativeImportExtensions: true,
  };
  const dir = await mkdtemp(join(tmpdir(), 'fave-bench-js-'));
  try {
    const files = (await Promise.all(SOURCE_DIRS.map(sourceFiles))).flat();
    for (const file of files) {
      const source = join(ROOT, file);
      await mkdir(dirname(join(dir, file)), { recursive: true });
      if (file.startsWith(COPIED_AS_IS)) {
        await copyFile(source, join(dir, file));
        continue;
      }
      const { outputText } = ts.transpileModule(await readFile(source, 'utf8'), { fileName: source, compilerOptions });
      await writeFile(join(dir, file.replace(/\.ts$/, '.js')), outputText);
    }
    // The tree resolves packages, `"type": "module"`, package.json (the CLI reads its version)
    // and the browser bundle's options (`scripts/`) as the sources do.
    await copyFile(join(ROOT, 'package.json'), join(dir, 'package.json'));
    await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    await symlink(join(ROOT, 'scripts'), join(dir, 'scripts'), 'dir');
    return {
      dir,
      files: files.length,
      build_ms: performance.now() - started,
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
