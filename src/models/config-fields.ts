// Typed reads of config.json fields: each failure is a TfvlmError naming the field (e.g.
// `config.json: text_config.num_attention_heads must be a positive integer, got "x"`).
import { TfvlmError } from '../errors.ts';

export type RawConfig = Record<string, unknown>;

/** Sizes and ids end up as int32 (tfjs shapes, token ids); larger values are corrupt, not big models. */
const MAX_INT = 2 ** 31 - 1;
/**
 * Upper bounds for counts that size per-item work before any weight is checked (a weight spec
 * lists every layer's keys): far above any published model, low enough that a corrupt value fails fast.
 */
const MAX_BY_FIELD: Record<string, number> = { num_hidden_layers: 10_000 };

export class ConfigReader {
  constructor(readonly raw: RawConfig, readonly where: string, readonly source = 'config.json') {}

  static from(raw: unknown, where: string, source = 'config.json'): ConfigReader {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new TfvlmError(`${source}: ${where || 'top level'} must be a JSON object, got ${JSON.stringify(raw)}`);
    }
    return new ConfigReader(raw as RawConfig, where, source);
  }

  path(field: string): string {
    return this.where ? `${this.where}.${field}` : field;
  }

  fail(field: string, what: string, value: unknown = this.raw[field]): never {
    throw new TfvlmError(`${this.source}: ${this.path(field)} ${what}, got ${JSON.stringify(value)}`);
  }

  has(field: string): boolean {
    return this.raw[field] !== undefined && this.raw[field] !== null;
  }

  positiveInt(field: string, fallback?: number): number {
    const v = this.raw[field] ?? fallback;
    if (v === undefined) this.fail(field, 'is required');
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) this.fail(field, 'must be a positive integer', v);
    const max = MAX_BY_FIELD[field] ?? MAX_INT;
    if (v > max) this.fail(field, `must be at most ${max}`, v);
    return v;
  }

  int(field: string, fallback?: number): number {
    const v = this.raw[field] ?? fallback;
    if (v === undefined) this.fail(field, 'is required');
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(field, 'must be an integer', v);
    if (Math.abs(v) > MAX_INT) this.fail(field, `must be at most ${MAX_INT} in size`, v);
    return v;
  }

  optionalInt(field: string, fallback: number | null = null): number | null {
    const v = this.raw[field];
    if (v === undefined) return fallback;
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(field, 'must be an integer or null', v);
    if (Math.abs(v) > MAX_INT) this.fail(field, `must be at most ${MAX_INT} in size`, v);
    return v;
  }

  positiveNumber(field: string, fallback?: number): number {
    const v = this.raw[field] ?? fallback;
    if (v === undefined) this.fail(field, 'is required');
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(field, 'must be a positive number', v);
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.raw[field] ?? fallback;
    if (typeof v !== 'boolean') this.fail(field, 'must be true or false', v);
    return v;
  }

  string(field: string, fallback?: string): string {
    const v = this.raw[field] ?? fallback;
    if (v === undefined) this.fail(field, 'is required');
    if (typeof v !== 'string') this.fail(field, 'must be a string', v);
    return v;
  }

  child(field: string): ConfigReader {
    const v = this.raw[field] ?? {};
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(field, 'must be an object', v);
    return new ConfigReader(v as RawConfig, this.path(field), this.source);
  }
}
