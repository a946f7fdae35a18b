// Child process for backend.test.ts: starts the backend as the environment says (TFVLM_BACKEND,
// TFVLM_THREADS, ...), runs a few matmuls and prints one JSON line describing what happened.
import { initBackend, backendInfo, tf } from '../../src/backend/index.ts';

try {
  const backend = await initBackend();
  const info = await backendInfo();
  // Shapes XNNPACK splits across threads, one of them not a multiple of any tile size.
  const products = tf.tidy(() =>
    [
      [256, 384, 512],
      [67, 129, 95],
      [1, 1024, 768],
    ].map(([m, k, n], i) => {
      const a = tf.randomUniform([m, k], -1, 1, 'float32', 2 * i + 1);
      const b = tf.randomUniform([k, n], -1, 1, 'float32', 2 * i + 2);
      return tf.matMul(a, b).dataSync() as Float32Array;
    }),
  );
  const bytes = Buffer.concat(products.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
  console.log(
    JSON.stringify({
      ok: true,
      backend,
      threads: info.threads,
      threadsRequested: info.threadsRequested,
      threadsFallback: info.threadsFallback,
      products: bytes.toString('base64'),
    }),
  );
} catch (e) {
  const err = e as Error;
  console.log(JSON.stringify({ ok: false, name: err.name, message: err.message }));
}
