// Before a collector enqueues or a worker loads its model: one connection to the --queue server, made
// once without retrying, so an unreachable server, a wrong password or a Redis too old for BullMQ is a
// message naming the URL in seconds, not an endless reconnect loop.
import { TfvlmError } from '../errors.ts';
import { connectionOptions, type RedisTarget } from './redis-url.ts';

/** BullMQ's floor (it refuses older servers). */
const MIN_REDIS = [6, 2, 0];

/** Connects to `target`, checks the server's version and disconnects; returns the version. */
export async function checkRedis(target: RedisTarget, timeoutMs = 5000): Promise<string> {
  const { Redis } = await import('ioredis');
  const client = new Redis({
    ...connectionOptions(target, 'tfvlm-check'),
    lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false,
  });
  // The socket's error (ECONNREFUSED, …) comes as an event; connect() then only says "Connection is closed".
  let socketError: Error | undefined;
  client.on('error', (e: Error) => { socketError ??= e; });
  try {
    try {
      await client.connect();
    } catch (e) {
      const why = (socketError ?? (e instanceof Error ? e : new Error(String(e)))).message;
      const hint = /ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|timeout/i.test(why)
        ? ' (is redis-server running there, and reachable from this machine?)'
        : /NOAUTH|WRONGPASS|AUTH/i.test(why) ? ' (check the user and password in the URL)' : '';
      throw new TfvlmError(`cannot reach Redis at ${target.display}: ${why}${hint}`);
    }
    try {
      await client.select(target.db); // ioredis selects it on connect too, but reports a failure only as an event
    } catch (e) {
      throw new TfvlmError(`Redis at ${target.display}: cannot use database ${target.db}: ${e instanceof Error ? e.message : String(e)} (the server's \`databases\` setting caps it; default 16)`);
    }
    const info = await client.info('server');
    const version = /redis_version:([\d.]+)/.exec(info)?.[1] ?? '';
    const parts = version.split('.').map(Number);
    const older = MIN_REDIS.findIndex((m, i) => (parts[i] ?? 0) !== m);
    if (version === '' || (older >= 0 && (parts[older] ?? 0) < MIN_REDIS[older]!)) {
      throw new TfvlmError(`Redis at ${target.display} is version ${version || 'unknown'}; BullMQ needs ${MIN_REDIS.join('.')} or newer`);
    }
    return version;
  } finally {
    client.disconnect();
  }
}
