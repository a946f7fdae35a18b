// `--queue redis://[USER:PASSWORD@]HOST[:PORT][/DB]` → where the Redis server is, checked with a message
// that shows the expected form, and the connection options BullMQ hands to ioredis. No Redis client is
// loaded here: the CLI checks the URL before anything slow happens.
import { TfvlmError } from '../errors.ts';

/** A Redis server and database, as a --queue URL names them. */
export interface RedisTarget {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  /** rediss:// : TLS. */
  tls: boolean;
  /** The URL with any password masked, for messages and logs. */
  display: string;
}

export const REDIS_URL_FORM = 'redis://[USER:PASSWORD@]HOST[:PORT][/DB] (or rediss:// for TLS; default port 6379, DB 0)';

/** Parses a --queue URL; a bad one throws a TfvlmError naming the part at fault and the expected form. */
export function parseRedisUrl(text: string): RedisTarget {
  const fail = (why: string): never => {
    throw new TfvlmError(`--queue ${JSON.stringify(text)}: ${why}; expected ${REDIS_URL_FORM}`);
  };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail('not a URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') fail(`the scheme must be redis:// or rediss://, got ${url.protocol}//`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') fail('no host');
  const port = url.port === '' ? 6379 : Number(url.port);
  if (!Number.isSafeInteger(port) || port < 1 || port > 65535) fail(`bad port ${url.port}`);
  const dbText = url.pathname.replace(/^\//, '');
  if (!/^\d*$/.test(dbText)) fail(`the path must be a database number (/0, /1, …), got ${url.pathname}`);
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isSafeInteger(db)) fail(`bad database number ${dbText}`);
  if (url.search !== '' || url.hash !== '') fail('no query (?…) or fragment (#…) is read');
  const username = url.username === '' ? undefined : decodeURIComponent(url.username);
  const password = url.password === '' ? undefined : decodeURIComponent(url.password);
  const auth = url.username === '' && url.password === '' ? '' : `${url.username}${url.password === '' ? '' : ':***'}@`;
  const hostShown = host.includes(':') ? `[${host}]` : host;
  return {
    host, port, db, tls: url.protocol === 'rediss:',
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    display: `${url.protocol}//${auth}${hostShown}:${port}/${db}`,
  };
}

/** ioredis options for a target (plain data, so BullMQ makes and owns its own connections). */
export interface RedisConnectionOptions {
  host: string;
  port: number;
  db: number;
  family: 0 | 4 | 6;
  username?: string;
  password?: string;
  tls?: Record<string, never>;
  /**
   * null: a command waits through a Redis outage instead of failing after 20 retries, which BullMQ
   * requires of a Worker's connections and which lets a long collection ride out a Redis restart.
   */
  maxRetriesPerRequest: null;
  connectionName?: string;
}

export function connectionOptions(target: RedisTarget, connectionName?: string): RedisConnectionOptions {
  return {
    host: target.host, port: target.port, db: target.db,
    // 0: IPv4 or IPv6, whichever the name resolves to (ioredis's default, 4, misses IPv6-only hosts).
    family: target.host.includes(':') ? 6 : 0,
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
    ...(target.tls ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    ...(connectionName !== undefined ? { connectionName } : {}),
  };
}
