// The page: starts the best backend (or ?backend=webgpu|wasm|cpu), loads the demo model (or the
// folder URL typed in, or ?model=URL), takes an image by drop or file picker, and streams the answer
// to "describe" or a question with greedy decoding, as `tfvlm describe --greedy` does. For tests,
// <body data-state> is loading | ready | running | done | error, and window.tfvlmResult holds the
// last answer (text, generated ids, timings, backend).
import { DEMO_MODEL_URL, imageBytes, loadVlm, startBackend } from '/dist-web/tfvlm.js';

const DESCRIBE = 'Describe this image.';
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const requestedBackend = params.get('backend') ?? undefined;

let vlm;
let image;
let running;

function setState(state) {
  document.body.dataset.state = state;
  const busy = state === 'running' || state === 'loading';
  $('describe').disabled = busy || !vlm || !image;
  $('ask').disabled = busy || !vlm || !image;
  $('stop').disabled = state !== 'running';
}

function showError(e) {
  $('error').hidden = false;
  $('error').textContent = e instanceof Error ? e.message : String(e);
  setState('error');
}

const ms = (x) => `${Math.round(x)} ms`;
const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

async function load(url) {
  setState('loading');
  $('error').hidden = true;
  vlm?.dispose();
  vlm = undefined;
  const t0 = performance.now();
  try {
    const info = await startBackend(requestedBackend);
    const parts = [info.backend];
    if (info.adapter) parts.push(info.adapter);
    if (info.simd !== null) parts.push(info.simd ? 'SIMD' : 'no SIMD');
    if (info.backend === 'wasm') parts.push(`${info.threads} thread${info.threads === 1 ? '' : 's'}`);
    parts.push(`weights ${info.weights}`);
    if (!info.crossOriginIsolated) parts.push('not cross-origin isolated');
    $('backend').textContent = parts.join(', ');
    $('backend-why').replaceChildren(...info.notUsed.map((why) => Object.assign(document.createElement('li'), { textContent: why })));
    $('backend-details').hidden = info.notUsed.length === 0;
    $('model-status').textContent = `Loading ${url}…`;
    vlm = await loadVlm(url, {
      onFetchProgress: (done, total) => { $('model-status').textContent = `Loading ${url}: ${mb(done)} of ${mb(total)}`; },
    });
    $('model-status').textContent = `Loaded ${url} in ${ms(performance.now() - t0)}.`;
    setState('ready');
  } catch (e) {
    $('model-status').textContent = `Could not load ${url}.`;
    showError(e);
  }
}

async function takeImage(file) {
  if (!file) return;
  try {
    image = await imageBytes(file);
    const preview = $('preview');
    if (preview.src) URL.revokeObjectURL(preview.src);
    // Small pictures are shown larger, their pixels kept sharp.
    preview.onload = () => {
      const small = preview.naturalWidth < 256;
      preview.style.width = small ? `${Math.min(256, preview.naturalWidth * 4)}px` : '';
      preview.style.imageRendering = small ? 'pixelated' : '';
    };
    preview.src = URL.createObjectURL(file);
    preview.alt = `The chosen image, ${file.name}`;
    preview.hidden = false;
    if (vlm) setState('ready');
  } catch (e) {
    showError(e);
  }
}

async function ask(question) {
  if (!vlm || !image || running) return;
  const text = question.trim() || DESCRIBE;
  $('asked').hidden = false;
  $('asked').textContent = text;
  $('answer').textContent = '';
  $('timings').textContent = '';
  $('error').hidden = true;
  running = new AbortController();
  setState('running');
  const request = { messages: [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text }] }] };
  const t0 = performance.now();
  let firstToken;
  try {
    const it = vlm.stream(request, { doSample: false, signal: running.signal });
    let r;
    for (r = await it.next(); !r.done; r = await it.next()) {
      firstToken ??= performance.now() - t0;
      $('answer').textContent += r.value;
    }
    const out = r.value;
    const t = out.timings;
    const rate = t.decodeTokens > 0 ? `${(t.decodeTokens / (t.decodeMs / 1000)).toFixed(1)} tokens/s` : '';
    $('timings').textContent = [
      `first token ${ms(firstToken ?? performance.now() - t0)}`, `image ${ms(t.embedMs)}`, `prefill ${ms(t.prefillMs)} (${t.prefillTokens} tokens)`,
      `${t.decodeTokens} tokens in ${ms(t.decodeMs)}`, rate, out.stopReason === 'aborted' ? 'stopped' : '',
    ].filter(Boolean).join(' · ');
    window.tfvlmResult = { question: text, text: out.text, generatedIds: out.generatedIds, stopReason: out.stopReason, timings: t, backend: $('backend').textContent };
    setState('done');
  } catch (e) {
    showError(e);
  } finally {
    running = undefined;
  }
}

$('model-url').value = params.get('model') ?? '';
$('model-url').placeholder = DEMO_MODEL_URL;
$('model-form').addEventListener('submit', (e) => {
  e.preventDefault();
  load($('model-url').value.trim() || DEMO_MODEL_URL);
});
$('file').addEventListener('change', () => takeImage($('file').files?.[0]));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  takeImage(e.dataTransfer?.files?.[0]);
});
drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); $('file').click(); } });
$('describe').addEventListener('click', () => ask(''));
$('ask-form').addEventListener('submit', (e) => {
  e.preventDefault();
  ask($('question').value);
});
$('stop').addEventListener('click', () => running?.abort());
load($('model-url').value.trim() || DEMO_MODEL_URL);
