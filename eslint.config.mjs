import { defineConfig } from 'eslint/config';
import baseConfig from './.config/eslint.config.mjs';

// One configuration for the whole tree: the plugin (src/), the service (server/), tests,
// benchmarks and what they share (testkit/). Formatting is Prettier's (npm run lint checks both).
export default defineConfig([
  {
    ignores: [
      '**/node_modules/',
      '**/dist/',
      'coverage/',
      'test-results/',
      'playwright-report/',
      'tests/browser/.harness/',
      'tests/load/',
      'bench/results/',
      '.data/',
    ],
  },
  ...baseConfig,
  {
    // The scaffold points typed linting at ./tsconfig.json, which here is the service's; the plugin has its own.
    files: ['src/**/*.{ts,tsx}', 'tests/e2e/**/*.ts', 'tests/browser/**/*.{ts,tsx}'],
    languageOptions: {
      parserOptions: {
        project: './tsconfig.plugin.json',
      },
    },
  },
  {
    files: ['server/**/*.ts', 'bench/**/*.ts', 'testkit/**/*.ts', 'tests/**/*.ts'],
    ignores: ['tests/e2e/**', 'tests/browser/**'],
    languageOptions: {
      parserOptions: {
        project: './tsconfig.json',
      },
    },
  },
]);
