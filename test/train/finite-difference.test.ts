// Every trainable weight's gradient against a central finite difference of the loss, on the
// active backend (whose custom kernels and gradient replacements training runs through).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { initBackend, tf } from '../../src/backend/index.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { loadTiny, tinyConfig, tinySetup, type TinySetup } from './tiny.ts';

let s: TinySetup;
before(async () => {
  await initBackend();
  s = await tinySetup();
});
after(() => fs.rmSync(s.root, { recursive: true, force: true }));

describe('gradients against finite differences', () => {
  it('the derivative along each gradient equals its norm, for every weight of vision, connector and text model', async () => {
    const model = await loadTiny(s);
    const trainer = new Trainer(model, s.modelDir, s.examples, tinyConfig({ trainable: 'all' }), 0);
    const batch = s.examples.slice(0, 4);
    const { grads } = trainer.gradients(batch);
    const checked: string[] = [];
    for (const p of trainer.params) {
      const g = grads.get(p.name)!;
      const norm = tf.tidy(() => tf.norm(g).dataSync()[0]!);
      // Softmax ignores a bias shared by every key (k_proj.bias): its gradient is exactly 0.
      if (norm < 1e-4) continue;
      const w0 = p.variable.clone();
      // A step of 1e-2 in the gradient's direction: the loss moves by ~1e-2·|g|, far above float32
      // rounding of the loss, while the second-order term cancels in the central difference.
      const h = 1e-2;
      const loss = (sign: number) => {
        p.variable.assign(tf.tidy(() => tf.add(w0, tf.mul(g, (sign * h) / norm))));
        return trainer.loss(batch);
      };
      const fd = (loss(1) - loss(-1)) / (2 * h);
      p.variable.assign(w0);
      w0.dispose();
      assert.ok(Math.abs(fd - norm) <= 0.02 * norm, `${p.name}: |g| ${norm.toExponential(3)}, finite difference ${fd.toExponential(3)}`);
      checked.push(p.name);
    }
    for (const part of ['vision_model.embeddings', 'vision_model.encoder', 'connector', 'text_model.embed_tokens', 'text_model.layers', 'lm_head']) {
      assert.ok(checked.some((n) => n.includes(part)), `no ${part} weight checked`);
    }
    for (const g of grads.values()) g.dispose();
    trainer.dispose();
    model.dispose();
  });
});
