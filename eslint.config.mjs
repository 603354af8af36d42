import { defineConfig } from 'eslint/config';
import baseConfig from './.config/eslint.config.mjs';

export default defineConfig([
  {
    ignores: [
      '**/node_modules/',
      '**/dist/',
      'server/',
      'sql/',
      'bench/',
      'coverage/',
      'test-results/',
      'playwright-report/',
      'tests/browser/.harness/',
    ],
  },
  ...baseConfig,
  {
    // The scaffold points typed linting at ./tsconfig.json, which here is the server's; the plugin has its own.
    files: ['src/**/*.{ts,tsx}', 'tests/e2e/**/*.ts', 'tests/browser/**/*.{ts,tsx}'],
    languageOptions: {
      parserOptions: {
        project: './tsconfig.plugin.json',
      },
    },
  },
]);
