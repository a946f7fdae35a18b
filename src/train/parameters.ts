// The tensors of a loaded Idefics3Model addressed by their Hugging Face checkpoint keys, with the
// layout change between the model's in-memory form and the checkpoint (Linear weights are kept
// transposed, the patch conv as a Linear). Training swaps tensors for tf.Variables through these
// slots; checkpoints are written back through them.
import { tf } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import type { Linear } from '../layers/linear.ts';
import type { LayerNorm } from '../layers/layer-norm.ts';
import type { RMSNorm } from '../layers/rms-norm.ts';
import type { Idefics3Model } from '../models/idefics3/model.ts';

/** How the model holds a checkpoint tensor: as is, transposed ([in, out]), or a conv as a transposed Linear. */
export type SlotLayout = 'plain' | 'transposed' | 'conv';

export interface ParamSlot {
  /** Checkpoint key, e.g. `model.text_model.layers.0.self_attn.q_proj.weight`. */
  key: string;
  /** Shape in the checkpoint. */
  hfShape: number[];
  layout: SlotLayout;
  get(): tf.Tensor;
  set(t: tf.Tensor): void;
  /** The Linear this slot belongs to (weight and bias slots of linears), for LoRA. */
  linear?: Linear;
}

/** In-model tensor → checkpoint layout (new tensor). */
export function toCheckpointLayout(slot: ParamSlot, t: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    if (slot.layout === 'plain') return tf.clone(t);
    const w = tf.transpose(t); // [out, in]
    return slot.layout === 'conv' ? tf.reshape(w, slot.hfShape) : w;
  });
}

/** Checkpoint layout → in-model tensor (new tensor). */
export function fromCheckpointLayout(slot: ParamSlot, t: tf.Tensor): tf.Tensor {
  if (t.shape.length !== slot.hfShape.length || t.shape.some((d, i) => d !== slot.hfShape[i])) {
    throw new TfvlmError(`${slot.key}: shape [${t.shape}] does not match the model's [${slot.hfShape}]`);
  }
  return tf.tidy(() => {
    if (slot.layout === 'plain') return tf.clone(t);
    const w = slot.layout === 'conv' ? tf.reshape(t, [slot.hfShape[0], t.size / slot.hfShape[0]]) : t;
    return tf.transpose(w);
  });
}

function fieldSlot<T extends object>(key: string, hfShape: number[], layout: SlotLayout, obj: T, field: keyof T, linear?: Linear): ParamSlot {
  return {
    key, hfShape, layout, linear,
    get: () => obj[field] as unknown as tf.Tensor,
    set: (t) => { (obj as Record<keyof T, unknown>)[field] = t; },
  };
}

function linearSlots(out: ParamSlot[], prefix: string, l: Linear, layout: 'transposed' | 'conv' = 'transposed', convShape?: number[]): void {
  out.push(fieldSlot(`${prefix}.weight`, convShape ?? [l.outFeatures, l.inFeatures], layout, l, 'weightT', l));
  if (l.bias) out.push(fieldSlot(`${prefix}.bias`, [l.outFeatures], 'plain', l, 'bias', l));
}

function layerNormSlots(out: ParamSlot[], prefix: string, ln: LayerNorm): void {
  out.push(fieldSlot(`${prefix}.weight`, [...ln.weight.shape], 'plain', ln, 'weight'));
  out.push(fieldSlot(`${prefix}.bias`, [...ln.bias.shape], 'plain', ln, 'bias'));
}

function rmsNormSlots(out: ParamSlot[], prefix: string, n: RMSNorm): void {
  out.push(fieldSlot(`${prefix}.weight`, [...n.weight.shape], 'plain', n, 'weight'));
}

/**
 * Every checkpoint tensor of the model, in idefics3WeightSpec order. With tied embeddings there is no
 * lm_head slot: the head is rebuilt from embed_tokens (see tiedHeadSync).
 */
export function idefics3Slots(model: Idefics3Model): ParamSlot[] {
  const out: ParamSlot[] = [];
  const vc = model.config.vision_config;
  const v = model.vision.weights;
  const vp = 'model.vision_model';
  linearSlots(out, `${vp}.embeddings.patch_embedding`, v.patch_embedding, 'conv', [vc.hidden_size, vc.num_channels, vc.patch_size, vc.patch_size]);
  out.push(fieldSlot(`${vp}.embeddings.position_embedding.weight`, [...v.position_embedding.shape], 'plain', v, 'position_embedding'));
  v.layers.forEach((layer, i) => {
    const p = `${vp}.encoder.layers.${i}`;
    layerNormSlots(out, `${p}.layer_norm1`, layer.layer_norm1);
    linearSlots(out, `${p}.self_attn.q_proj`, layer.self_attn.q);
    linearSlots(out, `${p}.self_attn.k_proj`, layer.self_attn.k);
    linearSlots(out, `${p}.self_attn.v_proj`, layer.self_attn.v);
    linearSlots(out, `${p}.self_attn.out_proj`, layer.self_attn.o);
    layerNormSlots(out, `${p}.layer_norm2`, layer.layer_norm2);
    linearSlots(out, `${p}.mlp.fc1`, layer.mlp.fc1);
    linearSlots(out, `${p}.mlp.fc2`, layer.mlp.fc2);
  });
  layerNormSlots(out, `${vp}.post_layernorm`, v.post_layernorm);
  linearSlots(out, 'model.connector.modality_projection.proj', model.connector.proj);
  const t = model.text.weights;
  const tp = 'model.text_model';
  out.push(fieldSlot(`${tp}.embed_tokens.weight`, [...t.embed_tokens.shape], 'plain', t, 'embed_tokens'));
  t.layers.forEach((layer, i) => {
    const p = `${tp}.layers.${i}`;
    rmsNormSlots(out, `${p}.input_layernorm`, layer.input_layernorm);
    linearSlots(out, `${p}.self_attn.q_proj`, layer.self_attn.q);
    linearSlots(out, `${p}.self_attn.k_proj`, layer.self_attn.k);
    linearSlots(out, `${p}.self_attn.v_proj`, layer.self_attn.v);
    linearSlots(out, `${p}.self_attn.o_proj`, layer.self_attn.o);
    rmsNormSlots(out, `${p}.post_attention_layernorm`, layer.post_attention_layernorm);
    linearSlots(out, `${p}.mlp.gate_proj`, layer.mlp.gate);
    linearSlots(out, `${p}.mlp.up_proj`, layer.mlp.up);
    linearSlots(out, `${p}.mlp.down_proj`, layer.mlp.down);
  });
  rmsNormSlots(out, `${tp}.norm`, t.norm);
  if (!model.config.tie_word_embeddings) linearSlots(out, 'lm_head', model.text.lmHead);
  return out;
}

/**
 * For tied embeddings: points the LM head at transpose(embed_tokens) for the duration of `fn`, so
 * gradients through the head reach embed_tokens. Returns fn's result; the head is restored after.
 */
export function withTiedHead<T>(model: Idefics3Model, fn: () => T): T {
  if (!model.config.tie_word_embeddings) return fn();
  const head = model.text.lmHead;
  const saved = head.weightT;
  head.weightT = tf.transpose(model.text.weights.embed_tokens) as tf.Tensor2D;
  try {
    return fn();
  } finally {
    head.weightT = saved;
  }
}

/** Copies transpose(embed_tokens) into the LM head after embed_tokens changed (tied embeddings). */
export function syncTiedHead(model: Idefics3Model): void {
  if (!model.config.tie_word_embeddings) return;
  const head = model.text.lmHead;
  const next = tf.keep(tf.tidy(() => tf.transpose(model.text.weights.embed_tokens) as tf.Tensor2D));
  head.weightT.dispose();
  head.weightT = next;
}

/** key → tensor in checkpoint layout (new tensors, owned by the caller). */
export function checkpointTensors(slots: readonly ParamSlot[]): Map<string, tf.Tensor> {
  return new Map(slots.map((s) => [s.key, toCheckpointLayout(s, s.get())]));
}
