// A kernel pool worker (pool.ts starts cores − 1 of these). Plain JS, started with no execArgv, so
// it loads without tsx or any loader. It holds an instance of linear.wasm for every registered
// arena memory and, for each pool call, claims chunks of the call's panel range until none is left.
// Between calls it spins on the control block's job word for a while (decode issues the next call
// within microseconds), then sleeps in Atomics.wait until pool.ts notifies it. The control block
// and the claim word are described in pool.ts.
import { receiveMessageOnPort, workerData } from 'node:worker_threads';

const { control, index, module, port, layout: L, kinds: KIND, claim: C, kernels, spinMicros } = workerData;
const ctl = new Int32Array(control);
const sleepFlag = L.SLEEP + L.LINE * (index - 1);
/** Arena id → this thread's kernel functions, indexed like POOL_KERNELS. */
const arenas = [];
const a = new Array(L.MAX_ARGS).fill(0);

function report(e) {
  if (Atomics.compareExchange(ctl, L.ERROR, 0, index) === 0) {
    port.postMessage(`kernel worker ${index}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Claims and runs chunks of the live call until they are all taken. */
function claimChunks() {
  let fn;
  let loaded = -1; // the claim tag whose arguments are in `a` and `fn`
  for (;;) {
    const claim = Atomics.load(ctl, L.CLAIM);
    const chunks = (claim >>> C.COUNT_SHIFT) & C.MASK;
    const j = claim & C.MASK;
    if (j >= chunks) return;
    if (Atomics.compareExchange(ctl, L.CLAIM, claim, claim + 1) !== claim) continue;
    // A successful claim is a claim of the live call: the caller wrote its arguments before
    // publishing the claim word and stays in the call until this chunk is counted complete. The
    // call may be a newer one than the job word this worker woke for, so the arguments are read
    // again whenever the tag changes.
    const tag = claim >>> C.TAG_SHIFT;
    if (tag !== loaded) {
      loaded = tag;
      const n = ctl[L.NARGS];
      for (let i = 0; i < n; i++) a[i] = ctl[L.ARGS + i];
      const scratchArg = ctl[L.SCRATCH_ARG];
      if (scratchArg >= 0) a[scratchArg] = (ctl[L.SCRATCH_BASE] >>> 0) + index * ctl[L.SCRATCH_STRIDE];
      fn = arenas[ctl[L.ARENA]][ctl[L.FN]];
    }
    const begin = ctl[L.RANGE_BEGIN];
    const len = ctl[L.RANGE_END] - begin;
    a[ctl[L.BEGIN_ARG]] = begin + Math.floor((len * j) / chunks);
    a[ctl[L.END_ARG]] = begin + Math.floor((len * (j + 1)) / chunks);
    try {
      fn(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]);
    } catch (e) {
      report(e);
    }
    if (Atomics.add(ctl, L.COMPLETED, 1) + 1 === chunks && Atomics.load(ctl, L.MAIN_SLEEP)) {
      Atomics.notify(ctl, L.COMPLETED);
    }
  }
}

/** Register / unregister / ping: every worker takes part and acknowledges. */
function controlJob(kind) {
  try {
    if (kind === KIND.REGISTER) {
      const { id, memory } = receiveMessageOnPort(port).message;
      const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
      arenas[id] = kernels.map((name) => exports[name]);
    } else if (kind === KIND.UNREGISTER) {
      arenas[ctl[L.ARENA]] = undefined;
    }
  } catch (e) {
    report(e);
  }
  Atomics.add(ctl, L.ACKS, 1);
  if (Atomics.load(ctl, L.MAIN_SLEEP)) Atomics.notify(ctl, L.ACKS);
}

let seen = Atomics.load(ctl, L.JOB);
Atomics.add(ctl, L.READY, 1);
Atomics.notify(ctl, L.READY);
for (;;) {
  let job = Atomics.load(ctl, L.JOB);
  if (job === seen) {
    let until = performance.now() + spinMicros / 1000;
    for (let n = 1; (job = Atomics.load(ctl, L.JOB)) === seen; n++) {
      if ((n & 1023) === 0 && performance.now() > until) {
        Atomics.store(ctl, sleepFlag, 1);
        Atomics.wait(ctl, L.JOB, seen);
        Atomics.store(ctl, sleepFlag, 0);
        until = performance.now() + spinMicros / 1000;
      }
    }
  }
  seen = job;
  const kind = job & KIND.MASK;
  if (kind === KIND.QUIT) break;
  if (kind === KIND.CALL) claimChunks();
  else controlJob(kind);
}
port.close();
