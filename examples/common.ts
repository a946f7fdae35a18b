// Shared by the examples: `--name value` options and the default model (the shipped demo model
// weights/tfvlm-demo when present, else the tiny test model, whose answers are random words).
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));

export function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? process.argv[i + 1] : undefined; // undefined when --name is last
  return value ?? fallback;
}

export function modelDir(): string {
  const demo = root('weights/tfvlm-demo');
  return option('model', fs.existsSync(`${demo}/config.json`) ? demo : root('test/fixtures/tiny-smolvlm'));
}

export const photo = (name: string) => root(`test/images/${name}`);
export const asset = (name: string) => root(`examples/assets/${name}`);
/** Prints text (a test running the examples in-process may collect it instead). */
export function write(text: string): void {
  const sink = (globalThis as { tfvlmExampleOutput?: (s: string) => void }).tfvlmExampleOutput;
  if (sink) sink(text);
  else process.stdout.write(text);
}

export const say = (line: string) => write(`${line}\n`);
export const maxNewTokens = () => Number(option('max-new-tokens', '32'));
