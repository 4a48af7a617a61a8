// @ts-check
import tseslint from 'typescript-eslint';

/**
 * A small, type-aware rule set: each rule catches a bug class the type checker lets through.
 * - Promises: a floating or misused promise loses its rejection (an unhandled rejection ends the
 *   process) or runs work nobody waits for (a stop that returns before its writes are done).
 * - Unsafe `any`: a value the type checker stopped checking leaks into typed code; values from
 *   outside are parsed with zod instead.
 * - Type imports: `verbatimModuleSyntax` keeps imports as written, so a type-only import must say
 *   so or it loads a module at run time for nothing.
 */
export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'coverage/**', 'test/fixtures/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unsafe-argument': 'error',
      '@typescript-eslint/no-unsafe-assignment': 'error',
      '@typescript-eslint/no-unsafe-call': 'error',
      '@typescript-eslint/no-unsafe-member-access': 'error',
      '@typescript-eslint/no-unsafe-return': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  {
    // Tests read JSON answers loosely on purpose (`Record<string, any>`, `res.json()`) and check
    // every field they use with `expect`, which fails loudly where an unchecked value would
    // mislead; the promise rules still apply to them.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
