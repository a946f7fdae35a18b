import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import os from 'node:os';
import { promises as fs, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { downloadModel } from '../../../src/io/hub/download.ts';
import { runDownload } from '../../../src/cli/download.ts';
import { TfvlmError } from '../../../src/errors.ts';
import type { DownloadProgress } from '../../../src/io/hub/progress.ts';
import { fixture } from '../../helpers/paths.ts';
import { FakeHub, fakeCommit, hubTestEnv, startFakeHub } from '../../helpers/fake-hub.ts';

const REPO = 'tiny/smolvlm';
const GATED = 'tiny/gated';
const SRC = fixture('tiny-smolvlm');
const TOP_FILES = [
  'added_tokens.json', 'chat_template.json', 'config.json', 'generation_config.json', 'merges.txt', 'model.safetensors',
  'preprocessor_config.json', 'processor_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json',
];
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const quiet = { progress: false, retryDelayMs: 0 } as const;

describe('downloadModel against a fake hub', () => {
  let hub: FakeHub;
  let home: string;
  let env: Record<string, string>;
  const repoDir = () => path.join(home, 'hub', 'models--tiny--smolvlm');

  before(async () => {
    hub = await startFakeHub([
      { id: REPO, dir: SRC, refs: { v1: fakeCommit('v1') } },
      { id: GATED, dir: SRC, token: 'hf_good' },
      { id: 'tiny/gated-public-listing', dir: SRC, token: 'hf_good', gated: true },
    ]);
  });
  after(() => hub.close());
  beforeEach(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'tfvlm-hub-'));
    env = hubTestEnv(home, hub);
    hub.requests.length = 0;
    hub.faults = {};
  });

  it('fetches only the model files into the HF cache layout, byte-identical', async () => {
    const seen: DownloadProgress[] = [];
    const result = await downloadModel(REPO, { env, ...quiet, onProgress: (p) => seen.push(p) });
    const commit = hub.repos.get(REPO)!.commit;
    assert.equal(result.commit, commit);
    assert.equal(result.dir, path.join(repoDir(), 'snapshots', commit));
    assert.deepEqual([...result.files].sort(), TOP_FILES);
    assert.deepEqual((await fs.readdir(result.dir)).sort(), TOP_FILES, 'golden/ and other repo files are not fetched');
    for (const f of TOP_FILES) {
      assert.ok(readFileSync(path.join(result.dir, f)).equals(readFileSync(path.join(SRC, f))), `${f} differs`);
      const link = await fs.readlink(path.join(result.dir, f));
      assert.match(link, /^\.\.\/\.\.\/blobs\/[0-9a-f]{40,64}$/, `${f} is a relative link into blobs/`);
    }
    const weights = readFileSync(path.join(SRC, 'model.safetensors'));
    assert.equal(await fs.readlink(path.join(result.dir, 'model.safetensors')), `../../blobs/${sha256(weights)}`);
    const config = readFileSync(path.join(SRC, 'config.json'));
    const gitSha1 = createHash('sha1').update(`blob ${config.length}\0`).update(config).digest('hex');
    assert.equal(await fs.readlink(path.join(result.dir, 'config.json')), `../../blobs/${gitSha1}`);
    assert.equal(await fs.readFile(path.join(repoDir(), 'refs', 'main'), 'utf8'), commit);
    assert.match(await fs.readFile(path.join(home, 'hub', 'CACHEDIR.TAG'), 'utf8'), /^Signature: 8a477f597d28d172789f06886806bc55\n/);
    assert.ok(!(await fs.readdir(path.join(repoDir(), 'blobs'))).some((b) => b.endsWith('.incomplete')));
    const absent = (await fs.readdir(path.join(repoDir(), '.no_exist', commit))).sort();
    assert.ok(absent.includes('model.safetensors.index.json') && absent.includes('spiece.model') && !absent.includes('config.json'), `${absent}`);

    const total = TOP_FILES.reduce((a, f) => a + readFileSync(path.join(SRC, f)).length, 0);
    assert.equal(result.bytesDownloaded, total);
    const last = seen.at(-1);
    assert.ok(last, 'a progress report');
    assert.equal(last.done, true);
    assert.equal(last.bytes, total);
    assert.equal(last.total, total);
    assert.ok(hub.requests.every((r) => r.headers.authorization === undefined), 'no token, no Authorization header');
  });

  it('a second download of the same revision only asks for the listing', async () => {
    await downloadModel(REPO, { env, ...quiet });
    hub.requests.length = 0;
    const again = await downloadModel(REPO, { env, ...quiet });
    assert.equal(again.bytesDownloaded, 0);
    assert.deepEqual(hub.requests.map((r) => r.url.split('?')[0]), [`/api/models/${REPO}/revision/main`]);
  });

  it('two downloads of the same model at once share the work: each blob is fetched once', async () => {
    const [a, b] = await Promise.all([downloadModel(REPO, { env, ...quiet }), downloadModel(REPO, { env, ...quiet })]);
    assert.equal(a.dir, b.dir);
    for (const f of TOP_FILES) assert.ok(readFileSync(path.join(a.dir, f)).equals(readFileSync(path.join(SRC, f))), f);
    const gets = hub.requests.filter((r) => r.method === 'GET' && (r.url.startsWith('/cdn/') || r.url.includes('/resolve/')));
    const nonLfs = TOP_FILES.length - 1;
    assert.equal(gets.length, nonLfs + 2, 'every file once, model.safetensors as resolve + CDN hop');
    assert.equal(a.bytesDownloaded + b.bytesDownloaded, TOP_FILES.reduce((n, f) => n + readFileSync(path.join(SRC, f)).length, 0));
    assert.deepEqual(await fs.readdir(path.join(home, 'hub', '.locks', 'models--tiny--smolvlm')), [], 'locks released');
  });

  it('a lock left by a dead process is taken over', async () => {
    const weights = readFileSync(path.join(SRC, 'model.safetensors'));
    const locks = path.join(home, 'hub', '.locks', 'models--tiny--smolvlm');
    await fs.mkdir(locks, { recursive: true });
    await fs.writeFile(path.join(locks, `${sha256(weights)}.tfvlm.lock`), '2147483646');
    const result = await downloadModel(REPO, { env, ...quiet });
    assert.ok(readFileSync(path.join(result.dir, 'model.safetensors')).equals(weights));
  });

  it('resumes with a Range request after the connection is cut half-way', async () => {
    hub.faults = { cutOnce: ['model.safetensors'] };
    const result = await downloadModel(REPO, { env, ...quiet });
    const weights = readFileSync(path.join(SRC, 'model.safetensors'));
    assert.ok(readFileSync(path.join(result.dir, 'model.safetensors')).equals(weights));
    const cdn = hub.requestsTo('/cdn/');
    const resumed = cdn.filter((r) => r.url.includes('model.safetensors'));
    assert.equal(resumed.length, 2, 'one cut request, one resumed request');
    assert.equal(resumed[0]!.headers.range, undefined);
    assert.equal(resumed[1]!.headers.range, `bytes=${weights.length >> 1}-`);
    assert.equal(result.bytesDownloaded, TOP_FILES.reduce((a, f) => a + readFileSync(path.join(SRC, f)).length, 0));
  });

  it('a transfer that stalls is cut after the idle timeout and resumed', async () => {
    hub.faults = { stallOnce: ['model.safetensors'] };
    const weights = readFileSync(path.join(SRC, 'model.safetensors'));
    const result = await downloadModel(REPO, { env: { ...env, HF_HUB_DOWNLOAD_TIMEOUT: '0.3' }, ...quiet });
    assert.ok(readFileSync(path.join(result.dir, 'model.safetensors')).equals(weights));
    const ranges = hub.requestsTo('/cdn/').filter((r) => r.url.includes('model.safetensors')).map((r) => r.headers.range);
    assert.deepEqual(ranges, [undefined, `bytes=${weights.length >> 1}-`]);
  });

  it('a listing that does not answer in time names the endpoint', async () => {
    hub.faults = { listingDelayMs: 2000 };
    await assert.rejects(downloadModel(REPO, { env, ...quiet, metadataTimeoutMs: 200 }), /cannot reach the hub at http:\/\/127\.0\.0\.1:\d+ for tiny\/smolvlm@main.*(timeout|aborted)/);
  });

  it('resumes a partial .incomplete blob left by an earlier run', async () => {
    const weights = readFileSync(path.join(SRC, 'model.safetensors'));
    await fs.mkdir(path.join(repoDir(), 'blobs'), { recursive: true });
    await fs.writeFile(path.join(repoDir(), 'blobs', `${sha256(weights)}.incomplete`), weights.subarray(0, 1000));
    const result = await downloadModel(REPO, { env, ...quiet });
    assert.ok(readFileSync(path.join(result.dir, 'model.safetensors')).equals(weights));
    const weightRequests = hub.requestsTo('/cdn/').filter((r) => r.url.includes('model.safetensors'));
    assert.deepEqual(weightRequests.map((r) => r.headers.range), ['bytes=1000-']);
  });

  it('detects corrupted LFS bytes by sha256, names the file and removes the blob', async () => {
    hub.faults = { corrupt: ['model.safetensors'] };
    await assert.rejects(downloadModel(REPO, { env, ...quiet }), (e: Error) => {
      assert.ok(e instanceof TfvlmError);
      assert.match(e.message, /model\.safetensors/);
      assert.match(e.message, /corrupted download.*sha256/);
      return true;
    });
    const blobs = await fs.readdir(path.join(repoDir(), 'blobs'));
    const weights = readFileSync(path.join(SRC, 'model.safetensors'));
    assert.ok(!blobs.some((b) => b.startsWith(sha256(weights))), `bad blob left behind: ${blobs}`);
  });

  it('detects corrupted git-stored bytes by git blob sha1', async () => {
    hub.faults = { corrupt: ['config.json'] };
    await assert.rejects(downloadModel(REPO, { env, ...quiet }), /config\.json.*corrupted download.*git blob sha1/);
  });

  it('404: names the model, the revision or file, and the endpoint', async () => {
    await assert.rejects(downloadModel('nobody/nothing', { env, ...quiet }), (e: Error) => {
      assert.ok(e instanceof TfvlmError);
      assert.match(e.message, /model or file not found/);
      assert.match(e.message, /nobody\/nothing/);
      assert.ok(e.message.includes(hub.url), e.message);
      return true;
    });
    await assert.rejects(downloadModel(`${REPO}@no-such-branch`, { env, ...quiet }), /not found.*"no-such-branch"/);
  });

  it('401 without a token and 403 with a wrong one say the repo is gated/private and to set HF_TOKEN', async () => {
    await assert.rejects(downloadModel(GATED, { env, ...quiet }), (e: Error) => {
      assert.ok(e instanceof TfvlmError);
      assert.match(e.message, /401/);
      assert.match(e.message, /private or gated/);
      assert.match(e.message, /HF_TOKEN/);
      return true;
    });
    await assert.rejects(downloadModel(GATED, { env: { ...env, HF_TOKEN: 'hf_bad' }, ...quiet }), /403.*gated or private.*HF_TOKEN/);
  });

  it('anonymous 401 RepoNotFound (what huggingface.co answers for unknown repos) reads as not found', async () => {
    hub.faults = { hideUnknownRepos: true };
    await assert.rejects(downloadModel('nobody/nothing', { env, ...quiet }), /model or file not found: nobody\/nothing.*401.*set HF_TOKEN/);
  });

  it('an unreachable endpoint says so and names it', async () => {
    const dead = { ...env, HF_ENDPOINT: 'http://127.0.0.1:1' };
    await assert.rejects(downloadModel(REPO, { env: dead, ...quiet }), /cannot reach the hub at http:\/\/127\.0\.0\.1:1.*HF_HUB_OFFLINE/);
  });

  it('starts over when the server ignores the Range header', async () => {
    hub.faults = { ignoreRange: true };
    const weights = readFileSync(path.join(SRC, 'model.safetensors'));
    await fs.mkdir(path.join(repoDir(), 'blobs'), { recursive: true });
    await fs.writeFile(path.join(repoDir(), 'blobs', `${sha256(weights)}.incomplete`), weights.subarray(0, 1000));
    const result = await downloadModel(REPO, { env, ...quiet });
    assert.ok(readFileSync(path.join(result.dir, 'model.safetensors')).equals(weights));
  });

  it('a leftover partial file with wrong bytes fails the hash check, is removed, and the next run succeeds', async () => {
    const weights = readFileSync(path.join(SRC, 'model.safetensors'));
    await fs.mkdir(path.join(repoDir(), 'blobs'), { recursive: true });
    const partial = path.join(repoDir(), 'blobs', `${sha256(weights)}.incomplete`);
    await fs.writeFile(partial, Buffer.alloc(1000, 7));
    await assert.rejects(downloadModel(REPO, { env, ...quiet }), /model\.safetensors.*corrupted download/);
    await assert.rejects(fs.stat(partial), { code: 'ENOENT' });
    const result = await downloadModel(REPO, { env, ...quiet });
    assert.ok(readFileSync(path.join(result.dir, 'model.safetensors')).equals(weights));
  });

  it('a gated repo whose listing is public fails on the first file, naming it', async () => {
    await assert.rejects(downloadModel('tiny/gated-public-listing', { env, ...quiet }), /file "config\.json" of tiny\/gated-public-listing@main.*401.*private or gated.*HF_TOKEN/);
  });

  it('a partial file already whole (killed before the rename) is checked and kept without fetching', async () => {
    const weights = readFileSync(path.join(SRC, 'model.safetensors'));
    await fs.mkdir(path.join(repoDir(), 'blobs'), { recursive: true });
    await fs.writeFile(path.join(repoDir(), 'blobs', `${sha256(weights)}.incomplete`), weights);
    const result = await downloadModel(REPO, { env, ...quiet });
    assert.ok(readFileSync(path.join(result.dir, 'model.safetensors')).equals(weights));
    assert.equal(hub.requestsTo('/cdn/').length, 0);
    assert.ok(!hub.requests.some((r) => r.url.endsWith('/model.safetensors')));
  });

  it('sends HF_TOKEN as a Bearer token and gets the gated repo', async () => {
    const result = await downloadModel(GATED, { env: { ...env, HF_TOKEN: 'hf_good' }, ...quiet });
    assert.ok(readFileSync(path.join(result.dir, 'config.json')).equals(readFileSync(path.join(SRC, 'config.json'))));
    const hubRequests = hub.requests.filter((r) => !r.url.startsWith('/cdn/'));
    assert.ok(hubRequests.length > 0 && hubRequests.every((r) => r.headers.authorization === 'Bearer hf_good'));
  });

  it('org/name@branch writes refs/<branch>; a commit-hash revision writes no ref', async () => {
    const v1 = fakeCommit('v1');
    const byBranch = await downloadModel(`${REPO}@v1`, { env, ...quiet });
    assert.equal(byBranch.commit, v1);
    assert.equal(await fs.readFile(path.join(repoDir(), 'refs', 'v1'), 'utf8'), v1);
    assert.ok(hub.requests.some((r) => r.url.startsWith(`/${REPO}/resolve/${v1}/`)), 'files are fetched by commit');

    const main = hub.repos.get(REPO)!.commit;
    const byHash = await downloadModel(REPO, { env, revision: main, ...quiet });
    assert.equal(byHash.dir, path.join(repoDir(), 'snapshots', main));
    assert.deepEqual(await fs.readdir(path.join(repoDir(), 'refs')), ['v1']);
    assert.equal(byHash.bytesDownloaded, 0, 'blobs shared across snapshots are not fetched twice');
  });

  it('runDownload (the CLI verb) takes a positional id and --revision', async () => {
    const result = await runDownload({ positionals: [REPO], values: { revision: 'v1' } }, { env, ...quiet });
    assert.equal(result.commit, fakeCommit('v1'));
    await assert.rejects(runDownload({ positionals: [], values: {} }, { env, ...quiet }), /expected one model id/);
  });

  it('refuses to download in offline mode without touching the network', async () => {
    await assert.rejects(downloadModel(REPO, { env: { ...env, HF_HUB_OFFLINE: '1' }, ...quiet }), /offline mode is on/);
    assert.equal(hub.requests.length, 0);
  });
});
