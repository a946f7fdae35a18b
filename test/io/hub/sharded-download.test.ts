import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import os from 'node:os';
import { promises as fs, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { downloadModel } from '../../../src/io/hub/download.ts';
import { resolveModel } from '../../../src/io/hub/resolve-model.ts';
import { TfvlmError } from '../../../src/errors.ts';
import { fixture } from '../../helpers/paths.ts';
import { FakeHub, hubTestEnv, startFakeHub } from '../../helpers/fake-hub.ts';

const quiet = { progress: false, retryDelayMs: 0 } as const;
const SHARDS = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'] as const;

/** A repo with an index and two shards, plus files tfvlm must leave alone. */
async function writeShardedRepo(dir: string, weightMap: Record<string, string>): Promise<void> {
  await fs.mkdir(path.join(dir, 'onnx'), { recursive: true });
  await fs.copyFile(fixture('tiny-smolvlm', 'config.json'), path.join(dir, 'config.json'));
  await fs.copyFile(fixture('tiny-smolvlm', 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  await fs.writeFile(path.join(dir, SHARDS[0]), randomBytes(30_000));
  await fs.writeFile(path.join(dir, SHARDS[1]), randomBytes(50_000));
  await fs.writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 80_000 }, weight_map: weightMap }));
  await fs.writeFile(path.join(dir, 'pytorch_model.bin'), randomBytes(1000));
  await fs.writeFile(path.join(dir, 'onnx', 'model.onnx'), randomBytes(1000));
  await fs.writeFile(path.join(dir, 'README.md'), '# sharded\n');
  await fs.writeFile(path.join(dir, 'chat_template.jinja'), '');
}

describe('sharded repos, hostile indexes, mirrors without blob metadata', () => {
  let hub: FakeHub;
  let home: string;
  let env: Record<string, string>;
  let repoDir: string;

  before(async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tfvlm-sharded-src-'));
    repoDir = path.join(root, 'sharded');
    await writeShardedRepo(repoDir, { 'a.weight': SHARDS[0], 'b.weight': SHARDS[1], 'c.weight': SHARDS[1] });
    const escape = path.join(root, 'escape');
    await writeShardedRepo(escape, { 'a.weight': '../../../escape.safetensors' });
    const ghost = path.join(root, 'ghost');
    await writeShardedRepo(ghost, { 'a.weight': SHARDS[0], 'b.weight': 'model-00003-of-00002.safetensors' });
    hub = await startFakeHub([
      { id: 'org/sharded', dir: repoDir },
      { id: 'org/escape', dir: escape },
      { id: 'org/ghost', dir: ghost },
    ]);
  });
  after(() => hub.close());
  beforeEach(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'tfvlm-sharded-'));
    env = hubTestEnv(home, hub);
    hub.requests.length = 0;
    hub.faults = {};
  });

  it('fetches the index and exactly the shards it names, nothing else', async () => {
    const result = await downloadModel('org/sharded', { env, ...quiet });
    const expected = ['chat_template.jinja', 'config.json', 'model.safetensors.index.json', 'tokenizer.json', ...SHARDS].sort();
    assert.deepEqual([...result.files].sort(), expected);
    assert.deepEqual((await fs.readdir(result.dir)).sort(), expected);
    for (const f of expected) assert.ok(readFileSync(path.join(result.dir, f)).equals(readFileSync(path.join(repoDir, f))), f);
    assert.ok(!hub.requests.some((r) => /pytorch_model|onnx|README/.test(r.url)));
    hub.requests.length = 0;
    assert.equal(await resolveModel('org/sharded', { env: { ...env, HF_HUB_OFFLINE: '1' }, ...quiet }), result.dir);
    assert.equal(hub.requests.length, 0);
  });

  it('offline with a shard missing from the cache names that shard', async () => {
    const result = await downloadModel('org/sharded', { env, ...quiet });
    await fs.rm(path.join(result.dir, SHARDS[1]));
    await assert.rejects(resolveModel('org/sharded', { env: { ...env, HF_HUB_OFFLINE: '1' }, ...quiet }), new RegExp(`lacks ${SHARDS[1]}`));
  });

  it('an index whose shard path climbs out of the snapshot is refused', async () => {
    await assert.rejects(downloadModel('org/escape', { env, ...quiet }), (e: Error) => {
      assert.ok(e instanceof TfvlmError);
      assert.match(e.message, /weight_map\["a\.weight"\].*not a safe relative path/);
      return true;
    });
    assert.ok(!hub.requests.some((r) => r.url.includes('escape.safetensors')));
  });

  it('an index naming a shard the repo lacks is refused, naming the shard', async () => {
    await assert.rejects(downloadModel('org/ghost', { env, ...quiet }), /names shard "model-00003-of-00002\.safetensors", which the repo does not have/);
  });

  it('without blob metadata in the listing, HEADs each file for etag and size', async () => {
    hub.faults = { plainListing: true };
    const result = await downloadModel('org/sharded', { env, ...quiet });
    const heads = hub.requests.filter((r) => r.method === 'HEAD');
    assert.equal(heads.length, result.files.length);
    for (const f of result.files) assert.ok(readFileSync(path.join(result.dir, f)).equals(readFileSync(path.join(repoDir, f))), f);
    assert.match(await fs.readlink(path.join(result.dir, SHARDS[0])), /^\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/, 'LFS etag from X-Linked-Etag');
  });

  it('a transfer that keeps failing stops with a message, keeps the partial file, and the next run resumes', async () => {
    hub.faults = { cutOnce: [SHARDS[1]] };
    await assert.rejects(downloadModel('org/sharded', { env, ...quiet, maxRetries: 0 }), (e: Error) => {
      assert.ok(e instanceof TfvlmError);
      assert.match(e.message, new RegExp(`${SHARDS[1]}.*stopped at byte 25000 of 50000.*run again to resume`));
      return true;
    });
    hub.requests.length = 0;
    const result = await downloadModel('org/sharded', { env, ...quiet });
    assert.ok(readFileSync(path.join(result.dir, SHARDS[1])).equals(readFileSync(path.join(repoDir, SHARDS[1]))));
    assert.deepEqual(hub.requests.filter((r) => r.url.startsWith('/cdn/')).map((r) => r.headers.range), ['bytes=25000-']);
    assert.equal(result.bytesDownloaded, 25_000);
  });
});
