/**
 * The query contract's runtime values and types, as the plugin needs them: server/contract.ts
 * is dependency-free (its zod schemas live in server/http/validation.ts, which the plugin
 * never imports), so the plugin uses it directly — one definition for both.
 */
export * from '../server/contract';
