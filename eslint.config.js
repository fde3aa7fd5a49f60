// The one lint and format tool: ESLint for correctness, @stylistic for layout
// (pure JavaScript, so `npm ci` needs no platform-specific binary).
import js from '@eslint/js';
import stylistic from '@stylistic/eslint-plugin';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'dist.*/**', 'dist-dev/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  // With type information: a promise nobody awaits is how a check ends up running after the
  // deletion it guards, or an error goes unreported; an `any` is a value no type checks.
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
  },
  // The build scripts and the s3rver child are plain JavaScript, outside the TypeScript program.
  { files: ['**/*.{js,mjs,cjs}'], ...tseslint.configs.disableTypeChecked },
  stylistic.configs.customize({ indent: 2, quotes: 'single', semi: true, braceStyle: '1tbs', arrowParens: true }),
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      '@stylistic/max-len': ['error', { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreComments: false, ignoreUrls: true }],
      '@stylistic/operator-linebreak': ['error', 'before'],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // A function does one job (STYLE.md): one that needs more than a screenful is phases that want
    // names. Blank lines and comments do not count, so a why-comment never costs a split. Tests are
    // left out: a table of cases is long by nature, and reads best in one piece.
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests compare against vitest's asymmetric matchers (expect.any, expect.stringMatching), typed
      // `any` on purpose so that they fit any expected shape, and against the CLI's JSON output, whose
      // shape the assertions themselves check at run time: a cast there would only claim what
      // expect() verifies. In src/, where no assertion follows, these rules stay on.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      // A stub of a promise-returning interface (fs, runCommand, sleep) is written `async () => ...`
      // on purpose: without `async`, a stub that throws would throw synchronously, where the real
      // thing rejects, and the code under test would see a failure it never meets in production.
      '@typescript-eslint/require-await': 'off',
    },
  },
);
