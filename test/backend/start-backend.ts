// Child process for backend.test.ts: starts the backend as the environment says (TFVLM_BACKEND,
// TFVLM_THREADS, ...), runs a few matmuls and prints one JSON line describing what happened
// (the products as a SHA-256 of their bytes).
import { createHash } from 'node:crypto';
import { initBackend, backendInfo, setComputeThreads, tf } from '../../src/backend/index.ts';

try {
  const backend = await initBackend();
  const info = await backendInfo();
  // Shapes XNNPACK splits across threads, one of them not a multiple of any tile size.
  const products = () => {
    const outs = tf.tidy(() =>
      ([
        [256, 384, 512],
        [67, 129, 95],
        [1, 1024, 768],
      ] as const).map(([m, k, n], i) => {
        const a = tf.randomUniform([m, k], -1, 1, 'float32', 2 * i + 1);
        const b = tf.randomUniform([k, n], -1, 1, 'float32', 2 * i + 2);
        return tf.matMul(a, b).dataSync() as Float32Array;
      }),
    );
    const hash = createHash('sha256');
    for (const p of outs) hash.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
    return hash.digest('hex');
  };
  const all = products();
  // The same products after switching a multi-thread backend to one thread, and back.
  const started = info.threadsStarted ?? 1;
  const switchedTo1 = setComputeThreads(1);
  const infoThreadsAfterSwitch = (await backendInfo()).threads;
  const oneThread = products();
  const switchedBack = setComputeThreads(started);
  const again = products();
  console.log(
    JSON.stringify({
      ok: true,
      backend,
      threads: info.threads,
      threadsRequested: info.threadsRequested,
      threadsFallback: info.threadsFallback,
      products: all,
      switchedTo1,
      infoThreadsAfterSwitch,
      productsAfterSwitchTo1: oneThread,
      switchedBack,
      productsAfterSwitchBack: again,
    }),
  );
} catch (e) {
  const err = e as Error;
  console.log(JSON.stringify({ ok: false, name: err.name, message: err.message }));
}
