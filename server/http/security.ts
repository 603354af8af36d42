/**
 * Who may do what over HTTP, from the configuration: the tokens, the "invalidate all" rate,
 * and the warnings an operator should see (in the log at start and on /readyz) about
 * settings that work but should not stay as they are.
 */
import { isLoopbackHost, type Config } from '../config';
import type { Tokens } from './auth';

/** The token docker-compose.yml uses when RULEPERF_API_TOKEN is not set: published, so no secret. */
export const COMPOSE_DEFAULT_TOKEN = 'ruleperf-local-token';

export interface SecuritySettings {
  tokens: Tokens;
  /** "invalidate all" at most once per this many ms on an instance (0: no limit). */
  invalidateAllIntervalMs: number;
  warnings: string[];
}

type SecurityConfig = Pick<
  Config,
  'HOST' | 'API_TOKEN' | 'API_ADMIN_TOKEN' | 'ALLOW_UNAUTHENTICATED' | 'INVALIDATE_ALL_INTERVAL_SECONDS'
>;

export function securityWarnings(config: SecurityConfig): string[] {
  const warnings: string[] = [];
  for (const name of ['API_TOKEN', 'API_ADMIN_TOKEN'] as const) {
    if (config[name] === COMPOSE_DEFAULT_TOKEN) {
      warnings.push(
        `${name} is the published default of docker-compose.yml: anyone who has read that file can ` +
          `${name === 'API_TOKEN' ? 'query this service' : 'flush its cache'}. Set ${name} (RULEPERF_API_TOKEN in the compose stack) to a secret of your own.`
      );
    }
  }
  if (!config.API_TOKEN && !isLoopbackHost(config.HOST)) {
    warnings.push(
      `No API_TOKEN while HOST=${config.HOST} accepts connections from other machines (ALLOW_UNAUTHENTICATED=true): ` +
        `anyone who reaches the port can query the service${config.API_ADMIN_TOKEN ? '' : ' and flush its cache'}.`
    );
  }
  return warnings;
}

export function securitySettings(config: SecurityConfig): SecuritySettings {
  return {
    tokens: { read: config.API_TOKEN, admin: config.API_ADMIN_TOKEN },
    invalidateAllIntervalMs: config.INVALIDATE_ALL_INTERVAL_SECONDS * 1000,
    warnings: securityWarnings(config),
  };
}

/**
 * The example printed once the service is ready. The token is never printed: the command
 * reads it from the shell (`API_TOKEN` set only on the `npm start` line is not in the shell,
 * so the command says so instead of failing with a 401).
 */
export function exampleCurl(url: string, config: Pick<Config, 'API_TOKEN'>): string {
  const auth = config.API_TOKEN
    ? ` \\\n    -H "Authorization: Bearer \${API_TOKEN:?export API_TOKEN=<the token the service was started with>}"`
    : '';
  const body = '{"range":{"from":"now-24h","to":"now"},"queries":[{"refId":"A","kind":"stats"}]}';
  return `  curl -s ${url}/api/v1/query -H 'Content-Type: application/json'${auth} \\\n    -d '${body}'`;
}
