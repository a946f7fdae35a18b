import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import os from 'node:os';
import { promises as fs, readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { downloadModel } from '../../../src/io/hub/download.ts';
import { resolveModel } from '../../../src/io/hub/resolve-model.ts';
import { fixture } from '../../helpers/paths.ts';
import { FakeHub, startFakeHub } from '../../helpers/fake-hub.ts';

/**
 * Both directions against Python's huggingface_hub: it downloads from the fake hub and tfvlm reads its cache offline;
 * tfvlm downloads and huggingface_hub reads ours offline. Runs only when TFVLM_HF_PYTHON names a python that has
 * huggingface_hub installed (e.g. `TFVLM_HF_PYTHON=/path/to/venv/bin/python npm test`).
 */
const PYTHON = process.env.TFVLM_HF_PYTHON;
const run = promisify(execFile);
const REPO = 'tiny/smolvlm';
const SRC = fixture('tiny-smolvlm');
const quiet = { progress: false, retryDelayMs: 0 } as const;

describe('interop with huggingface_hub (Python)', { skip: PYTHON ? false : 'set TFVLM_HF_PYTHON to run' }, () => {
  let hub: FakeHub;
  let home: string;
  before(async () => {
    hub = await startFakeHub([{ id: REPO, dir: SRC }]);
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'tfvlm-interop-'));
  });
  after(() => hub.close());

  const python = (cache: string, code: string, extra: Record<string, string> = {}) =>
    run(PYTHON!, ['-c', code], { env: { PATH: process.env.PATH, HOME: home, HF_HOME: home, HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url, HF_HUB_DISABLE_TELEMETRY: '1', ...extra } });

  it('tfvlm reads a cache written by huggingface_hub, offline', async () => {
    const cache = path.join(home, 'py');
    const { stdout } = await python(cache, `from huggingface_hub import snapshot_download\nprint(snapshot_download('${REPO}', allow_patterns=['*.json', 'merges.txt', 'model.safetensors']))`);
    hub.requests.length = 0;
    const dir = await resolveModel(REPO, { env: { HF_HOME: home, HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '1' }, ...quiet });
    assert.equal(dir, stdout.trim().split('\n').pop());
    assert.ok(readFileSync(path.join(dir, 'model.safetensors')).equals(readFileSync(path.join(SRC, 'model.safetensors'))));
    assert.equal(hub.requests.length, 0);
  });

  it('huggingface_hub reads a cache written by tfvlm, offline, and finds it healthy', async () => {
    const cache = path.join(home, 'ours');
    const ours = await downloadModel(REPO, { env: { HF_HOME: home, HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url }, ...quiet });
    hub.requests.length = 0;
    const code = [
      'from huggingface_hub import hf_hub_download, scan_cache_dir, try_to_load_from_cache',
      `print(hf_hub_download('${REPO}', 'model.safetensors'))`,
      `print(try_to_load_from_cache('${REPO}', 'model.safetensors.index.json') is not None)`,
      `info = scan_cache_dir('${cache}')`,
      'print(len(info.warnings), [(r.repo_id, next(iter(r.revisions)).nb_files) for r in info.repos])',
    ].join('\n');
    const { stdout } = await python(cache, code, { HF_HUB_OFFLINE: '1' });
    const [file, noExist, scan] = stdout.trim().split('\n');
    assert.equal(file, path.join(ours.dir, 'model.safetensors'));
    assert.equal(noExist, 'True', 'the .no_exist marker is understood');
    assert.equal(scan, `0 [('${REPO}', ${ours.files.length})]`);
    assert.equal(hub.requests.length, 0);
  });
});
