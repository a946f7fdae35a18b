'use strict';
// Entry of one pthread worker of @tensorflow/tfjs-backend-wasm's threaded SIMD build under Node.
// tfjs hands Emscripten a Blob URL for the worker script and a Blob holding the glue's factory
// source; Node's worker_threads cannot start from either. The main thread (wasm-threads.ts) starts
// this file instead and passes the worker-script Blob as workerData. Here we read both Blobs and
// run them exactly as tfjs built them, with the names their Node bundle closes over defined.
const workerThreads = require('node:worker_threads');
const { EventEmitter } = require('node:events');
const fs = require('node:fs');

// The factory source comes from tfjs's Node bundle (dist/tf-backend-wasm.node.js), shipped as the
// text of one function: these are the bundle-level names it refers to.
Object.assign(globalThis, {
  require$$0: fs,
  require$$1: require('node:path'),
  require$$3: require('node:perf_hooks'),
  require$$4: require('node:os'),
  commonjsGlobal: globalThis,
  _scriptDir: __filename,
  // TypeScript's downlevel helpers, as emitted in that bundle (tslib semantics).
  __values: (o) => o[Symbol.iterator](),
  __read: (o, n) => {
    const out = [];
    for (const v of o) {
      if (n !== undefined && out.length >= n) break;
      out.push(v);
    }
    return out;
  },
  __spreadArray: (to, from) => to.concat(Array.prototype.slice.call(from)),
});

const FACTORY_MARKER = 'tfvlm:threaded-simd-factory';
let factorySource;

// The worker script listens on this stand-in for parentPort, so each message can be rewritten
// (the factory Blob replaced by a marker importScripts understands) before the script sees it.
const port = new EventEmitter();
port.postMessage = (msg, transfer) => workerThreads.parentPort.postMessage(msg, transfer);

const workerRequire = (id) =>
  id === 'worker_threads' || id === 'node:worker_threads'
    ? { ...workerThreads, parentPort: port }
    : require(id);

// Messages wait until the worker script has been run and listens on `port`.
let pending = (async () => {
  const script = await workerThreads.workerData.script.text();
  new Function('require', '__filename', script)(workerRequire, __filename);
  globalThis.importScripts = (f) => {
    const source = f === FACTORY_MARKER ? factorySource : fs.readFileSync(f, 'utf8');
    (0, eval)(source);
  };
})();
workerThreads.parentPort.on('message', (data) => {
  pending = pending
    .then(async () => {
      if (data && data.cmd === 'load' && data.urlOrBlob instanceof Blob) {
        factorySource = await data.urlOrBlob.text();
        data.urlOrBlob = FACTORY_MARKER;
      }
      port.emit('message', data);
    })
    .catch((e) => {
      process.nextTick(() => {
        throw e;
      });
    });
});

