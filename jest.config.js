// Timestamps in tests are read as UTC wherever the tests run.
process.env.TZ = 'UTC';

const base = require('./.config/jest.config');
const { grafanaESModules, nodeModulesToTransform } = require('./.config/jest/utils');

const swc = base.transform['^.+\\.(t|j)sx?$'];

module.exports = {
  // Jest configuration provided by Grafana scaffolding (.config/), extended below.
  ...base,
  // The plugin's tests only: server/ and tests/ run under node's test runner.
  roots: ['<rootDir>/src'],
  transform: {
    ...base.transform,
    // @grafana/* 13 reach ESM-only `.mjs` builds (d3-interpolate, ...) that the scaffold's pattern does not cover.
    '^.+\\.mjs$': swc,
  },
  transformIgnorePatterns: [nodeModulesToTransform([...grafanaESModules, '@react-hookz/web', '@ver0/deep-equal'])],
  // Rendering Grafana UI components takes seconds on a busy 2-core machine: jest's 5 s
  // default failed tests that were only slow. Hangs are still caught, at a minute.
  testTimeout: 60_000,
};
