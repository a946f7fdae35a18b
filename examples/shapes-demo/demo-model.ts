// The files of the shipped demo model apart from its weights: a word-level tokenizer over the shapes
// dataset vocabulary, SmolVLM's chat template, an Idefics3 config and the processor configs, all in
// the layout transformers' Idefics3ForConditionalGeneration / Idefics3Processor read.
import fs from 'node:fs';
import path from 'node:path';
import { VOCABULARY } from './text.ts';
import { writeFileAtomic } from '../../src/io/atomic-write.ts';

/** Special tokens in id order (ids 0..n−1). */
export const DEMO_SPECIAL_TOKENS = [
  '<|endoftext|>', '<unk>', '<|im_start|>', '<end_of_utterance>', '<fake_token_around_image>', '<global-img>', '<image>',
] as const;

/** Largest tile grid the processor can cut (image side / tile side, both from the config). */
const MAX_TILE_GRID = 8;

/** <row_r_col_c> tokens announcing the tiles of a split image (Idefics3Processor's prompt). */
function tileTokens(size: DemoModelSize): string[] {
  if (!size.tileSize) return [];
  const n = Math.min(MAX_TILE_GRID, Math.ceil(size.imageSize / size.tileSize));
  return Array.from({ length: n * n }, (_, i) => `<row_${Math.floor(i / n) + 1}_col_${(i % n) + 1}>`);
}

/** Words the chat template writes around the dataset text (roles are capitalised by the template). */
const TEMPLATE_WORDS = [':', 'Assistant', 'System', 'User'];

// test/fixtures/tiny-smolvlm/chat_template.json (SmolVLM's template, unchanged).
export const SMOLVLM_CHAT_TEMPLATE =
  "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

export interface DemoModelSize {
  /** Side images are resized to (size.longest_edge); without tileSize also the vision tower's input. */
  imageSize: number;
  /**
   * With image splitting: the tile side (vision image_size = max_image_size.longest_edge). The
   * processor cuts the image into tiles, each announced by a <row_r_col_c> token, plus a downscaled
   * global view. Tried for the demo (32 px tiles, one per grid cell): where-questions about one of
   * several shapes stayed at guessing level there too, and each step cost ~1.5× as much.
   */
  tileSize?: number;
  patchSize: number;
  visionHidden: number;
  visionLayers: number;
  visionHeads: number;
  textHidden: number;
  textLayers: number;
  textHeads: number;
  textKvHeads: number;
  textIntermediate: number;
  scaleFactor: number;
  /** lm_head shares embed_tokens (as SmolVLM's text model does); default false. */
  tieWordEmbeddings?: boolean;
}

/**
 * 96 px input, patch 16 → 6×6 patches; pixel shuffle ×2 → 3×3 image tokens, one per cell of the
 * dataset's 3×3 grid (a 96 px shapes image goes in unresized).
 */
export const DEMO_MODEL_SIZE: DemoModelSize = {
  imageSize: 96, patchSize: 16, visionHidden: 128, visionLayers: 2, visionHeads: 2,
  textHidden: 192, textLayers: 3, textHeads: 2, textKvHeads: 1, textIntermediate: 512, scaleFactor: 2,
  // As SmolVLM: a colour or shape word has one vector, read in questions and written in answers.
  tieWordEmbeddings: true,
};

/** Tokens matched whole before pre-tokenisation (tokenizer.json added_tokens). */
function addedTokens(size: DemoModelSize): string[] {
  return [...DEMO_SPECIAL_TOKENS, ...tileTokens(size)];
}

/** token → id: special tokens, then template words, then the dataset vocabulary, then tile tokens. */
export function demoVocabulary(size: DemoModelSize = DEMO_MODEL_SIZE): Map<string, number> {
  const vocab = new Map<string, number>();
  for (const t of [...DEMO_SPECIAL_TOKENS, ...TEMPLATE_WORDS, ...VOCABULARY, ...tileTokens(size)]) if (!vocab.has(t)) vocab.set(t, vocab.size);
  return vocab;
}

/**
 * tokenizer.json: whole words (WordPiece without subwords) over whitespace-separated words split again into letter runs and single
 * other characters (text.ts textTokens); decoding joins with spaces and removes the space
 * before punctuation (WordPiece decoder cleanup).
 */
export function demoTokenizerJson(size: DemoModelSize = DEMO_MODEL_SIZE): Record<string, unknown> {
  const vocab = demoVocabulary(size);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(size).map((content) => ({
      id: vocab.get(content), content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'WhitespaceSplit' },
        { type: 'Split', pattern: { Regex: '[A-Za-z]+|[^A-Za-z]' }, behavior: 'Isolated', invert: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    // WordPiece with every word in the vocabulary acts as a word-level model; @huggingface/tokenizers
    // (JS) has no WordLevel model.
    model: { type: 'WordPiece', unk_token: '<unk>', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: Object.fromEntries(vocab) },
  };
}

export function demoConfig(size: DemoModelSize = DEMO_MODEL_SIZE): Record<string, unknown> {
  const vocab = demoVocabulary(size);
  const visionSide = size.tileSize ?? size.imageSize;
  const pad = vocab.get('<|endoftext|>')!;
  return {
    architectures: ['Idefics3ForConditionalGeneration'],
    image_token_id: vocab.get('<image>'),
    model_type: 'idefics3',
    pad_token_id: pad,
    scale_factor: size.scaleFactor,
    text_config: {
      head_dim: size.textHidden / size.textHeads,
      hidden_act: 'silu',
      hidden_size: size.textHidden,
      intermediate_size: size.textIntermediate,
      max_position_embeddings: 512,
      model_type: 'llama',
      num_attention_heads: size.textHeads,
      num_hidden_layers: size.textLayers,
      num_key_value_heads: size.textKvHeads,
      pad_token_id: pad,
      rms_norm_eps: 1e-5,
      rope_theta: 10000.0,
      tie_word_embeddings: size.tieWordEmbeddings ?? false,
      vocab_size: vocab.size,
    },
    tie_word_embeddings: size.tieWordEmbeddings ?? false,
    torch_dtype: 'float32',
    transformers_version: '4.47.1',
    use_cache: true,
    vision_config: {
      hidden_act: 'gelu_pytorch_tanh',
      hidden_size: size.visionHidden,
      image_size: visionSide,
      intermediate_size: size.visionHidden * 4,
      layer_norm_eps: 1e-6,
      max_image_size: { longest_edge: visionSide },
      model_type: 'idefics3_vision',
      num_attention_heads: size.visionHeads,
      num_channels: 3,
      num_hidden_layers: size.visionLayers,
      patch_size: size.patchSize,
      size: { longest_edge: size.imageSize },
      use_base_siglip: false,
    },
    vocab_size: vocab.size,
  };
}

/** Writes every non-weight file of the demo model into dir. */
export function writeDemoModelFiles(dir: string, size: DemoModelSize = DEMO_MODEL_SIZE): void {
  fs.mkdirSync(dir, { recursive: true });
  const vocab = demoVocabulary(size);
  const visionSide = size.tileSize ?? size.imageSize;
  const json = (name: string, value: unknown) => writeFileAtomic(path.join(dir, name), `${JSON.stringify(value, null, 2)}\n`);
  const eos = '<end_of_utterance>';
  json('config.json', demoConfig(size));
  json('tokenizer.json', demoTokenizerJson(size));
  json('tokenizer_config.json', {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(addedTokens(size).map((content) => [String(vocab.get(content)), {
      content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true,
    }])),
    additional_special_tokens: ['<fake_token_around_image>', '<image>', eos, '<global-img>'],
    bos_token: '<|im_start|>',
    clean_up_tokenization_spaces: false,
    eos_token: eos,
    legacy: false,
    model_max_length: 512,
    pad_token: '<|endoftext|>',
    padding_side: 'right',
    processor_class: 'Idefics3Processor',
    tokenizer_class: 'PreTrainedTokenizerFast',
    unk_token: '<unk>',
  });
  json('special_tokens_map.json', {
    additional_special_tokens: ['<fake_token_around_image>', '<image>', eos, '<global-img>'],
    bos_token: '<|im_start|>',
    eos_token: eos,
    pad_token: '<|endoftext|>',
    unk_token: '<unk>',
  });
  json('chat_template.json', { chat_template: SMOLVLM_CHAT_TEMPLATE });
  json('preprocessor_config.json', {
    do_convert_rgb: true,
    do_image_splitting: size.tileSize !== undefined,
    do_normalize: true,
    do_pad: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_processor_type: 'Idefics3ImageProcessor',
    image_std: [0.5, 0.5, 0.5],
    max_image_size: { longest_edge: visionSide },
    processor_class: 'Idefics3Processor',
    resample: 1,
    rescale_factor: 1 / 255,
    size: { longest_edge: size.imageSize },
  });
  const side = visionSide / size.patchSize;
  json('processor_config.json', { image_seq_len: (side * side) / (size.scaleFactor * size.scaleFactor), processor_class: 'Idefics3Processor' });
  json('generation_config.json', {
    bos_token_id: vocab.get('<|im_start|>'),
    eos_token_id: vocab.get(eos),
    pad_token_id: vocab.get('<|endoftext|>'),
    transformers_version: '4.47.1',
  });
}
