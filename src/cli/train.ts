import path from 'node:path';
import { initBackend } from '../backend/index.ts';
import { TfvlmError } from '../errors.ts';
import { readConversations } from '../train/jsonl.ts';
import { loadModel } from '../models/registry.ts';
import { Idefics3Model } from '../models/idefics3/model.ts';
import { VlmProcessor } from '../processing/processor.ts';
import { buildExamples } from '../train/examples.ts';
import type { LossWeighting } from '../train/batch.ts';
import { GradientWorkers } from '../train/gradient-workers.ts';
import { formatDuration, runTraining } from '../train/loop.ts';
import { DEFAULT_TRAIN_CONFIG, Trainer, type TrainableMode, type TrainConfig } from '../train/trainer.ts';
import { optionalNumber, requireString, type Command } from './command.ts';

const d = DEFAULT_TRAIN_CONFIG;

function checkedRegex(source: string): string {
  try {
    new RegExp(source);
  } catch (e) {
    throw new TfvlmError(`tfvlm train: --freeze '${source}' is not a valid regular expression: ${(e as Error).message}`);
  }
  return source;
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'fine-tune a model on chat conversations (projector, LoRA or all weights)',
  usage: `Usage: tfvlm train --model DIR --data train.jsonl --out DIR [options]

Trains on JSON Lines of conversations in the chat message format (images by path, relative to the
JSONL file; e.g. the shapes demo's data, 'npm run demo:data' in a tfvlm checkout). The loss covers
the assistant turns only.

  --trainable projector|lora|all   what trains (default ${d.trainable}); projector = the connector
  --lora-rank R --lora-alpha A     LoRA size (default ${d.loraRank}, ${d.loraAlpha}); adapters on the text model's
                                   attention and MLP projections, saved PEFT-style
  --merge                          LoRA: write the merged full model instead of the adapter
  --freeze REGEX                   projector/all: keep the weights whose checkpoint names match REGEX
                                   frozen (e.g. '^model\\.vision_model\\.' keeps the vision tower as it is)
  --epochs N (${d.epochs})  --max-steps N  --lr X (${d.lr})  --batch-size N (${d.batchSize})  --grad-accum N (${d.gradAccum})
  --warmup-ratio X (${d.warmupRatio})  --weight-decay X (${d.weightDecay})  --max-grad-norm X (${d.maxGradNorm})  --seed S (${d.seed})
  --loss-weighting token|turn      token (default): mean over assistant tokens, as transformers;
                                   turn: every assistant turn weighs the same, however long
  --eval eval.jsonl                evaluate (loss, teacher-forced exact match) every --eval-every steps
  --eval-every N (100)  --save-every N (0 = at the end only)  --log-every N (10)
  --resume CHECKPOINT              continue from OUT/checkpoint-<step> (weights, optimizer state, step)
  --group-by-length                batch conversations of similar length together (less padding): each
                                   50 steps' shuffled examples are sorted by length, as transformers does
  --workers N                      data-parallel: N worker threads, each with its own copy of the model
                                   on one thread, share every step's examples with this one (default 0;
                                   with 2 cores on wasm, 1 worker: ~1.4× the steps/s; memory × N+1)

Writes OUT as a Hugging Face model folder (config, tokenizer and processor files of --model, then
model.safetensors, or adapter_model.safetensors + adapter_config.json for LoRA). Ctrl-C saves
OUT/checkpoint-<step> and stops. Every file is written whole and every checkpoint folder is complete
or absent (written aside, fsynced, renamed), whenever the process dies.`,
  options: {
    model: { type: 'string' },
    data: { type: 'string' },
    eval: { type: 'string' },
    out: { type: 'string' },
    trainable: { type: 'string' },
    'lora-rank': { type: 'string' },
    'lora-alpha': { type: 'string' },
    merge: { type: 'boolean' },
    epochs: { type: 'string' },
    'max-steps': { type: 'string' },
    lr: { type: 'string' },
    'batch-size': { type: 'string' },
    'grad-accum': { type: 'string' },
    'warmup-ratio': { type: 'string' },
    'weight-decay': { type: 'string' },
    'max-grad-norm': { type: 'string' },
    seed: { type: 'string' },
    'eval-every': { type: 'string' },
    'save-every': { type: 'string' },
    'log-every': { type: 'string' },
    resume: { type: 'string' },
    freeze: { type: 'string' },
    'loss-weighting': { type: 'string' },
    workers: { type: 'string' },
    'group-by-length': { type: 'boolean' },
  },
  async run(args) {
    const modelDir = requireString(args, 'model', 'train');
    const dataFile = requireString(args, 'data', 'train');
    const out = requireString(args, 'out', 'train');
    const num = (name: string) => optionalNumber(args, name, 'train');
    const trainable = (args.values.trainable ?? d.trainable) as TrainableMode;
    if (!['projector', 'lora', 'all'].includes(trainable)) {
      throw new TfvlmError(`tfvlm train: --trainable must be projector, lora or all, got '${String(trainable)}'`);
    }
    const maxSteps = num('max-steps');
    const config: TrainConfig = {
      ...d,
      trainable,
      epochs: num('epochs') ?? d.epochs,
      ...(maxSteps !== undefined ? { maxSteps } : {}),
      lr: num('lr') ?? d.lr,
      batchSize: num('batch-size') ?? d.batchSize,
      gradAccum: num('grad-accum') ?? d.gradAccum,
      warmupRatio: num('warmup-ratio') ?? d.warmupRatio,
      weightDecay: num('weight-decay') ?? d.weightDecay,
      maxGradNorm: num('max-grad-norm') ?? d.maxGradNorm,
      seed: num('seed') ?? d.seed,
      loraRank: num('lora-rank') ?? d.loraRank,
      loraAlpha: num('lora-alpha') ?? d.loraAlpha,
      ...(typeof args.values.freeze === 'string' ? { freeze: checkedRegex(args.values.freeze) } : {}),
      ...(typeof args.values['loss-weighting'] === 'string' ? { lossWeighting: args.values['loss-weighting'] as LossWeighting } : {}),
      ...(args.values['group-by-length'] === true ? { groupByLength: true } : {}),
    };
    const workers = num('workers') ?? 0;
    if (!Number.isInteger(workers) || workers < 0) throw new TfvlmError(`tfvlm train: --workers must be a non-negative integer, got ${workers}`);
    const log = (s: string) => process.stderr.write(`${s}\n`);
    await initBackend(undefined, { syncReads: 'training' });
    const model = await loadModel(modelDir, { weights: 'float32' });
    if (!(model instanceof Idefics3Model)) {
      model.dispose();
      throw new TfvlmError(`tfvlm train: ${modelDir} is not an Idefics3/SmolVLM model (only those train)`);
    }
    const processor = await VlmProcessor.load(modelDir);
    const pad = processor.tokenizer.padTokenId ?? processor.tokenizer.eosTokenId ?? 0;
    const t0 = performance.now();
    const train = await buildExamples(processor, await readConversations(dataFile), dataFile);
    const evalFile = typeof args.values.eval === 'string' ? args.values.eval : undefined;
    const evalExamples = evalFile ? await buildExamples(processor, await readConversations(evalFile), evalFile) : undefined;
    log(`${train.length} training conversations${evalExamples ? `, ${evalExamples.length} eval` : ''} prepared in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const trainer = new Trainer(model, modelDir, train, config, pad);
    let pool: GradientWorkers | undefined;
    try {
      if (workers > 0) {
        pool = await GradientWorkers.start(workers, { baseDir: modelDir, frozenFingerprints: trainer.trainableModel.frozenFingerprints(), settings: config, lossWeighting: config.lossWeighting ?? 'token', padTokenId: pad });
        trainer.attachWorkers(pool);
        log(`${workers} gradient worker(s) started: each step's examples are split ${workers + 1} ways`);
      }
      const resume = args.values.resume;
      if (typeof resume === 'string') {
        trainer.resume(resume);
        log(`resumed from ${resume} at step ${trainer.step}`);
      }
      log(`training ${trainable}: ${trainer.params.length} tensors, ${trainer.totalSteps} steps (${trainer.stepsPerEpoch} per epoch)`);
      const result = await runTraining(trainer, {
        outDir: out, evalExamples, evalEvery: num('eval-every') ?? 100, saveEvery: num('save-every') ?? 0, logEvery: num('log-every') ?? 10, log,
      });
      if (result.interrupted) return 130;
      const merge = args.values.merge === true;
      trainer.finish();
      trainer.saveModel(out, { merge });
      log(`done: ${result.steps} steps in ${formatDuration(result.seconds)}, final loss ${result.finalLoss.toFixed(4)}, ` +
        `${Math.round(result.tokensPerSecond)} tok/s; model written to ${path.resolve(out)}`);
      return 0;
    } finally {
      await pool?.close();
      trainer.dispose();
      model.dispose();
    }
  },
};
