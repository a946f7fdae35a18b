import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import os from 'node:os';
import { promises as fs } from 'node:fs';
import { hubCacheDir, hubEndpoint, hubToken, isOffline } from '../../../src/io/hub/env.ts';
import { cachedCommit, parseHubId, repoFolder, writeRef } from '../../../src/io/hub/cache.ts';
import { selectModelFiles, shardsOfIndex } from '../../../src/io/hub/model-files.ts';
import { digestForEtag, etagKind } from '../../../src/io/hub/integrity.ts';
import { normalizeEtag } from '../../../src/io/hub/download.ts';
import { TfvlmError } from '../../../src/errors.ts';

describe('hub environment', () => {
  it('cache dir: HF_HUB_CACHE, then HUGGINGFACE_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME, then ~/.cache', () => {
    assert.equal(hubCacheDir({ HF_HUB_CACHE: '/a', HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c' }), '/a');
    assert.equal(hubCacheDir({ HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c' }), '/b');
    assert.equal(hubCacheDir({ HF_HOME: '/c', XDG_CACHE_HOME: '/x' }), path.join('/c', 'hub'));
    assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/x' }), path.join('/x', 'huggingface', 'hub'));
    assert.equal(hubCacheDir({}), path.join(os.homedir(), '.cache', 'huggingface', 'hub'));
    assert.equal(hubCacheDir({ HF_HOME: '~/hf' }), path.join(os.homedir(), 'hf', 'hub'));
  });

  it('offline: 1/ON/YES/TRUE in HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE', () => {
    for (const v of ['1', 'on', 'YES', 'true', ' True ']) assert.equal(isOffline({ HF_HUB_OFFLINE: v }), true, v);
    for (const v of ['0', '', 'no', 'false']) assert.equal(isOffline({ HF_HUB_OFFLINE: v }), false, v);
    assert.equal(isOffline({ TRANSFORMERS_OFFLINE: '1' }), true);
    assert.equal(isOffline({}), false);
  });

  it('endpoint from HF_ENDPOINT without a trailing slash; token from HF_TOKEN or the login token file', async () => {
    assert.equal(hubEndpoint({}), 'https://huggingface.co');
    assert.equal(hubEndpoint({ HF_ENDPOINT: 'http://127.0.0.1:9/' }), 'http://127.0.0.1:9');
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'tfvlm-env-'));
    assert.equal(hubToken({ HF_HOME: home }), undefined);
    await fs.writeFile(path.join(home, 'token'), 'hf_file\n');
    assert.equal(hubToken({ HF_HOME: home }), 'hf_file');
    assert.equal(hubToken({ HF_HOME: home, HF_TOKEN: 'hf_env' }), 'hf_env');
  });
});

describe('hub ids and the cache layout', () => {
  it('parses org/name[@revision] and refuses malformed ids and revisions', () => {
    assert.deepEqual(parseHubId('a/b'), { repoId: 'a/b', revision: 'main' });
    assert.deepEqual(parseHubId('a/b@v1.0'), { repoId: 'a/b', revision: 'v1.0' });
    assert.deepEqual(parseHubId('a/b', 'refs/pr/1'), { repoId: 'a/b', revision: 'refs/pr/1' });
    for (const bad of ['a', 'a/b/c', 'a//b', 'a/b c', 'a--x/b', 'a/..b', '/a/b', 'a/b@', 'a/b@../x']) {
      assert.throws(() => parseHubId(bad), TfvlmError, bad);
    }
    assert.throws(() => parseHubId('a/b@v1', 'v2'), /names revision "v1" but --revision says "v2"/);
  });

  it('repo folder models--org--name; refs written without newline, read with trim; hashes resolve to themselves', async () => {
    const cache = await fs.mkdtemp(path.join(os.tmpdir(), 'tfvlm-refs-'));
    const repo = repoFolder(cache, 'Org/Na.me');
    assert.equal(repo, path.join(cache, 'models--Org--Na.me'));
    const hash = 'a'.repeat(40);
    assert.equal(await cachedCommit(repo, 'main'), undefined);
    assert.equal(await cachedCommit(repo, hash), hash);
    await writeRef(repo, 'refs/pr/1', hash);
    assert.equal(await fs.readFile(path.join(repo, 'refs', 'refs', 'pr', '1'), 'utf8'), hash);
    await writeRef(repo, hash, hash);
    assert.deepEqual(await fs.readdir(path.join(repo, 'refs')), ['refs']);
    await fs.writeFile(path.join(repo, 'refs', 'main'), `${'b'.repeat(40)}\n`);
    assert.equal(await cachedCommit(repo, 'main'), 'b'.repeat(40));
    await fs.writeFile(path.join(repo, 'refs', 'main'), 'garbage');
    assert.equal(await cachedCommit(repo, 'main'), undefined);
  });
});

describe('which files a model needs', () => {
  it('keeps the model files of a listing, prefers the single weights file over an index', () => {
    const listing = ['config.json', 'model.safetensors', 'model.safetensors.index.json', 'README.md', 'pytorch_model.bin', 'tokenizer.json', 'chat_template.jinja'];
    assert.deepEqual(selectModelFiles(listing, 'x'), ['config.json', 'model.safetensors', 'tokenizer.json', 'chat_template.jinja']);
    assert.deepEqual(selectModelFiles(['config.json', 'model.safetensors.index.json'], 'x'), ['config.json', 'model.safetensors.index.json']);
    assert.throws(() => selectModelFiles(['model.safetensors'], 'org/x'), /org\/x has no config\.json/);
    assert.throws(() => selectModelFiles(['config.json', 'pytorch_model.bin'], 'org/x'), /safetensors weights only/);
  });

  it('reads shard names from an index and refuses malformed ones', () => {
    const idx = JSON.stringify({ weight_map: { a: 's1.safetensors', b: 's2.safetensors', c: 's1.safetensors' } });
    assert.deepEqual(shardsOfIndex(idx, 'i'), ['s1.safetensors', 's2.safetensors']);
    assert.throws(() => shardsOfIndex('{', 'idx.json'), /idx\.json: not valid JSON/);
    assert.throws(() => shardsOfIndex('{}', 'idx.json'), /"weight_map" must be an object/);
    assert.throws(() => shardsOfIndex('{"weight_map":{}}', 'idx.json'), /empty/);
    assert.throws(() => shardsOfIndex('{"weight_map":{"a":3}}', 'idx.json'), /weight_map\["a"\] is not a file name/);
    assert.throws(() => shardsOfIndex('{"weight_map":{"a":"/etc/passwd"}}', 'idx.json'), /not a safe relative path/);
  });
});

describe('etags and content hashes', () => {
  it('normalizes etag headers and checks content by sha256 or git blob sha1', async () => {
    assert.equal(normalizeEtag('W/"abc"'), 'abc');
    assert.equal(normalizeEtag('"abc"'), 'abc');
    assert.equal(etagKind('0'.repeat(64)), 'sha256');
    assert.equal(etagKind('0'.repeat(40)), 'git-sha1');
    assert.equal(etagKind('xyz-1'), 'opaque');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tfvlm-etag-'));
    const file = path.join(dir, 'hello');
    await fs.writeFile(file, 'hello\n');
    // `printf 'hello\n' | git hash-object --stdin` and `sha256sum`
    assert.equal(await digestForEtag(file, 6, '0'.repeat(40)), 'ce013625030ba8dba906f756967f9e9ca394464a');
    assert.equal(await digestForEtag(file, 6, '0'.repeat(64)), '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03');
    assert.equal(await digestForEtag(file, 6, 'opaque'), undefined);
  });
});
