import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import os from 'node:os';
import { promises as fs, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { resolveModel } from '../../../src/io/hub/resolve-model.ts';
import { TfvlmError } from '../../../src/errors.ts';
import { fixture } from '../../helpers/paths.ts';
import { FakeHub, hubTestEnv, startFakeHub } from '../../helpers/fake-hub.ts';

const REPO = 'HuggingFaceTB/SmolVLM-256M-Instruct';
const SRC = fixture('tiny-smolvlm');
const FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json'];
const quiet = { progress: false, retryDelayMs: 0 } as const;

/** A cache as huggingface_hub writes it: blobs named by sha256 (LFS) or git sha1, relative links, refs/main. */
async function writeHfCache(hubCache: string, repoId: string, commit: string, files: string[]): Promise<string> {
  const repoDir = path.join(hubCache, `models--${repoId.replace('/', '--')}`);
  const snapshot = path.join(repoDir, 'snapshots', commit);
  await fs.mkdir(path.join(repoDir, 'blobs'), { recursive: true });
  await fs.mkdir(path.join(repoDir, 'refs'), { recursive: true });
  await fs.mkdir(snapshot, { recursive: true });
  for (const f of files) {
    const bytes = readFileSync(path.join(SRC, f));
    const etag = f.endsWith('.safetensors')
      ? createHash('sha256').update(bytes).digest('hex')
      : createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
    await fs.writeFile(path.join(repoDir, 'blobs', etag), bytes);
    await fs.symlink(`../../blobs/${etag}`, path.join(snapshot, f));
  }
  await fs.writeFile(path.join(repoDir, 'refs', 'main'), commit);
  return snapshot;
}

describe('resolveModel', () => {
  let hub: FakeHub;
  let home: string;
  let env: Record<string, string>;
  const commit = 'c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00';

  before(async () => {
    hub = await startFakeHub([{ id: REPO, dir: SRC }]);
  });
  after(() => hub.close());
  beforeEach(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'tfvlm-resolve-'));
    env = hubTestEnv(home, hub);
    hub.requests.length = 0;
  });

  it('returns an existing local folder as is', async () => {
    assert.equal(await resolveModel(SRC, { env, ...quiet }), path.resolve(SRC));
    assert.equal(hub.requests.length, 0);
  });

  it('reads a local-looking spec as a path, never asking the hub: ./x, ../x, x/y under an existing x/', async () => {
    const cwd = process.cwd();
    process.chdir(home);
    try {
      await fs.mkdir('weights');
      await assert.rejects(resolveModel('weights/nope', { env, ...quiet }), /model "weights\/nope": no such folder \(weights\/ is a folder here/);
      await assert.rejects(resolveModel('./SmolVLM-256M', { env, ...quiet }), /no such folder, and not a hub id/);
      await assert.rejects(resolveModel('../SmolVLM-256M', { env, ...quiet }), /no such folder, and not a hub id/);
      await assert.rejects(resolveModel('.hidden/x', { env, ...quiet }), /no such folder, and not a hub id/);
      assert.deepEqual(hub.requests, [], 'no request reached the hub');
    } finally {
      process.chdir(cwd);
    }
  });

  it('rejects a path that is neither a folder nor a hub id, and a file', async () => {
    await assert.rejects(resolveModel('./no/such/dir/here', { env, ...quiet }), /no such folder, and not a hub id/);
    await assert.rejects(resolveModel(path.join(SRC, 'config.json'), { env, ...quiet }), /is a file/);
    await assert.rejects(resolveModel('org/na--me', { env, ...quiet }), TfvlmError);
    await assert.rejects(resolveModel('org/name@../../x', { env, ...quiet }), /not a safe relative path/);
    assert.equal(hub.requests.length, 0);
  });

  it('reuses a cache written in huggingface_hub layout with zero requests, online', async () => {
    const snapshot = await writeHfCache(path.join(home, 'hub'), REPO, commit, FILES);
    const dir = await resolveModel(REPO, { env, ...quiet });
    assert.equal(dir, snapshot);
    assert.ok(readFileSync(path.join(dir, 'model.safetensors')).equals(readFileSync(path.join(SRC, 'model.safetensors'))));
    assert.equal(hub.requests.length, 0);
  });

  it('finds the cache through HF_HOME/hub when HF_HUB_CACHE is unset, and through a commit-hash revision', async () => {
    const snapshot = await writeHfCache(path.join(home, 'hub'), REPO, commit, FILES);
    const envHome = { HF_HOME: home, HF_ENDPOINT: hub.url };
    assert.equal(await resolveModel(REPO, { env: envHome, ...quiet }), snapshot);
    assert.equal(await resolveModel(`${REPO}@${commit}`, { env: envHome, ...quiet }), snapshot);
    assert.equal(await resolveModel(REPO, { env: envHome, revision: commit, ...quiet }), snapshot);
    assert.equal(hub.requests.length, 0);
  });

  it('HF_HUB_OFFLINE=1 resolves from a pre-populated cache and never touches the network', async () => {
    const snapshot = await writeHfCache(path.join(home, 'hub'), REPO, commit, FILES);
    assert.equal(await resolveModel(REPO, { env: { ...env, HF_HUB_OFFLINE: '1' }, ...quiet }), snapshot);
    assert.equal(hub.requests.length, 0);
  });

  it('offline and missing: says which files are missing and that offline mode is on', async () => {
    const offline = { ...env, HF_HUB_OFFLINE: '1' };
    await assert.rejects(resolveModel(REPO, { env: offline, ...quiet }), (e: Error) => {
      assert.ok(e instanceof TfvlmError);
      assert.match(e.message, /no snapshot of revision "main"/);
      assert.match(e.message, /[Oo]ffline mode is on/);
      return true;
    });
    await writeHfCache(path.join(home, 'hub'), REPO, commit, ['config.json', 'tokenizer.json']);
    await assert.rejects(resolveModel(REPO, { env: offline, ...quiet }), /lacks model\.safetensors.*Offline mode is on/s);
    assert.equal(hub.requests.length, 0);
  });

  it('online and missing: downloads once, then resolves from the cache with zero requests', async () => {
    const dir = await resolveModel(`${REPO}@main`, { env, ...quiet });
    assert.equal(dir, path.join(home, 'hub', 'models--HuggingFaceTB--SmolVLM-256M-Instruct', 'snapshots', hub.repos.get(REPO)!.commit));
    assert.ok(readFileSync(path.join(dir, 'tokenizer.json')).equals(readFileSync(path.join(SRC, 'tokenizer.json'))));
    assert.ok(hub.requests.length > 0);
    hub.requests.length = 0;
    assert.equal(await resolveModel(REPO, { env, ...quiet }), dir);
    assert.equal(await resolveModel(REPO, { env: { ...env, HF_HUB_OFFLINE: 'true' }, ...quiet }), dir);
    assert.equal(hub.requests.length, 0);
  });

  it('a partial snapshot (config only) is completed online', async () => {
    await writeHfCache(path.join(home, 'hub'), REPO, hub.repos.get(REPO)!.commit, ['config.json']);
    const dir = await resolveModel(REPO, { env, ...quiet });
    assert.ok(readFileSync(path.join(dir, 'model.safetensors')).equals(readFileSync(path.join(SRC, 'model.safetensors'))));
    assert.ok(!hub.requests.some((r) => r.url.endsWith('/config.json')), 'the cached config.json is not fetched again');
  });
});
