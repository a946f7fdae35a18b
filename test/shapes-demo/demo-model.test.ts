import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../src/backend/index.ts';
import { readConversations, messageText } from '../../src/train/jsonl.ts';
import { DATA_FILE, writeShapesDataset } from '../../examples/shapes-demo/dataset.ts';
import { SHAPES, COLORS } from '../../examples/shapes-demo/scene.ts';
import { VOCABULARY, textTokens } from '../../examples/shapes-demo/text.ts';
import { Checkpoint } from '../../src/io/checkpoint.ts';
import { parseIdefics3Config } from '../../src/models/idefics3/config.ts';
import { idefics3WeightSpec } from '../../src/models/idefics3/model.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { DEMO_MODEL_SIZE, DEMO_SPECIAL_TOKENS, writeDemoModelFiles } from '../../examples/shapes-demo/demo-model.ts';
import { buildExamples } from '../../src/train/examples.ts';
import { VlmProcessor } from '../../src/processing/processor.ts';

const SHIPPED = fileURLToPath(new URL('../../weights/tfvlm-demo/', import.meta.url));
let root: string;

before(async () => {
  await initBackend();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvlm-demo-test-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

describe('demo model files', () => {
  it('the word-level tokenizer round-trips every dataset text, one id per textTokens word', async () => {
    const dir = path.join(root, 'model');
    writeDemoModelFiles(dir);
    const tok = await loadTokenizer(dir);
    const data = path.join(root, 'data');
    await writeShapesDataset(data, { n: 60, seed: 11, size: 32 });
    const texts = new Set<string>();
    for (const c of await readConversations(path.join(data, DATA_FILE))) for (const m of c.messages) texts.add(messageText(m));
    for (const color of COLORS) for (const shape of SHAPES) texts.add(`Is there a ${color} ${shape}?`);
    for (const t of texts) {
      const ids = tok.encode(t);
      assert.deepEqual(ids.map((id) => tok.idToToken(id)), textTokens(t), t);
      assert.equal(tok.decode(ids), t);
    }
    for (const w of VOCABULARY) assert.notEqual(tok.tokenToId(w), tok.unkTokenId, w);
    for (const sp of DEMO_SPECIAL_TOKENS) assert.deepEqual(tok.encode(`a${sp}red`).map((id) => tok.idToToken(id)), ['a', sp, 'red']);
  });

  it('splits a shapes image into one tile per grid cell, each one image token after its <row_r_col_c> token', async () => {
    const dir = path.join(root, 'tiled');
    const size = { ...DEMO_MODEL_SIZE, tileSize: DEMO_MODEL_SIZE.imageSize / 3 };
    writeDemoModelFiles(dir, size);
    const data = path.join(root, 'data96');
    await writeShapesDataset(data, { n: 1, seed: 5, size: size.imageSize, questionsPerImage: 0 });
    const processor = await VlmProcessor.load(dir);
    const file = path.join(data, DATA_FILE);
    const [example] = await buildExamples(processor, await readConversations(file), file);
    assert.ok(example, 'one example');
    const grid = 3;
    assert.deepEqual(example.pixelShape, [grid * grid + 1, 3, size.tileSize, size.tileSize]);
    const tokens = [...example.input_ids].map((id) => processor.tokenizer.idToToken(id));
    assert.ok(!tokens.includes('<unk>'), tokens.join(' '));
    const tiles = tokens.flatMap((t, i) => (t === '<image>' ? [tokens[i - 1]] : []));
    const expected = Array.from({ length: grid * grid }, (_, i) => `<row_${Math.floor(i / grid) + 1}_col_${(i % grid) + 1}>`);
    assert.deepEqual(tiles, [...expected, '<global-img>']);
  });
});

describe('shipped demo model (weights/tfvlm-demo)', { skip: !fs.existsSync(path.join(SHIPPED, 'model.safetensors')) }, () => {
  it('is a complete Idefics3 checkpoint with transformers key names, ≤ 15 MB', () => {
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json',
      'chat_template.json', 'preprocessor_config.json', 'processor_config.json', 'generation_config.json', 'README.md']) {
      assert.ok(fs.existsSync(path.join(SHIPPED, f)), f);
    }
    const raw = JSON.parse(fs.readFileSync(path.join(SHIPPED, 'config.json'), 'utf8'));
    assert.equal(raw.model_type, 'idefics3');
    assert.deepEqual(raw.architectures, ['Idefics3ForConditionalGeneration']);
    assert.equal(raw.vision_config.model_type, 'idefics3_vision');
    assert.equal(raw.text_config.model_type, 'llama');
    const config = parseIdefics3Config(raw);
    const ckpt = Checkpoint.open(SHIPPED);
    const spec = idefics3WeightSpec(config);
    assert.deepEqual(ckpt.keys().sort(), [...spec.keys()].sort());
    for (const [k, shape] of spec) assert.deepEqual(ckpt.entry(k).shape, shape, k);
    ckpt.close();
    const bytes = fs.readdirSync(SHIPPED).reduce((n, f) => n + fs.statSync(path.join(SHIPPED, f)).size, 0);
    assert.ok(bytes <= 15e6, `${bytes} bytes`);
    const pre = JSON.parse(fs.readFileSync(path.join(SHIPPED, 'preprocessor_config.json'), 'utf8'));
    assert.equal(pre.do_image_splitting, DEMO_MODEL_SIZE.tileSize !== undefined);
    assert.equal(pre.max_image_size.longest_edge, raw.vision_config.image_size);
  });
});
