/*
 * Extends the scaffolded .config/webpack config (kept as @grafana/create-plugin writes it).
 *
 * The only change: one entry, src/module.ts. The scaffold finds entries by globbing
 * every `src/**\/plugin.json` below the working directory, which here would also walk
 * server/ and node_modules/. plugin.json itself lives at the repository root;
 * src/plugin.json is a symlink to it because the scaffold reads it from src/.
 */
import path from 'path';
import type { Configuration } from 'webpack';

import grafanaConfig, { type Env } from './.config/webpack/webpack.config';

const config = async (env: Env): Promise<Configuration> => {
  const base = await grafanaConfig(env);
  return {
    ...base,
    entry: { module: path.resolve(process.cwd(), 'src', 'module.ts') },
  };
};

export default config;
