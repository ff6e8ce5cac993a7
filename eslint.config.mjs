// typescript-eslint's recommended rules over the app, its scripts, the console and the tests.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'test-output/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // The app's core and its function files stay readable: files of at most ~350 lines, functions of at most 80.
    files: ['shared/**/*.ts', 'functions/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 350, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    // The console's pages stay readable too: files of at most ~350 lines, functions of at most 80.
    files: ['console/src/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 350, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    // Tool configuration in CommonJS (.dependency-cruiser.cjs).
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    // The tests, the demo and the console read the app's JSON API: its bodies are typed at the app's edge, not here.
    files: ['test/**/*.ts', 'console/src/**/*.ts', 'scripts/demo.ts', 'scripts/demo-proof.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
