// What every `--json` prints: one line, keys in snake_case (load_ms, embed_ms, tfjs_version), so the
// library's camelCase fields and the CLI's own names read as one vocabulary. Only identifier-like
// keys change; keys that are data (package names, tensor paths, file names) stay as they are.

const CAMEL = /^[a-z][a-zA-Z0-9]*$/;

/** tfjsVersion → tfjs_version, rssMB → rss_mb, heapUsedMB → heap_used_mb. */
export function snakeCase(key: string): string {
  if (!CAMEL.test(key) || !/[A-Z]/.test(key)) return key;
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z])([A-Z][a-z])/g, '$1_$2').toLowerCase();
}

/** A copy of value with every object key in snake_case (arrays and primitives as they are). */
export function snakeCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCaseKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [snakeCase(k), snakeCaseKeys(v)]));
}

/** The JSON line for stdout. */
export function jsonLine(value: unknown): string {
  return `${JSON.stringify(snakeCaseKeys(value))}\n`;
}
