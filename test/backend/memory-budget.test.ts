// The fit check: sizes parse with units, TFVLM_MEMORY_AVAILABLE overrides the machine's figure, and a
// need above what is available is refused with every part named.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { availableMemory, checkFits, parseByteSize } from '../../src/backend/memory-budget.ts';
import { TfvlmError } from '../../src/errors.ts';

describe('memory budget', () => {
  it('parses sizes', () => {
    assert.equal(parseByteSize('12GB', 'x'), 12e9);
    assert.equal(parseByteSize('800 MiB', 'x'), 800 * 2 ** 20);
    assert.equal(parseByteSize('1.5gb', 'x'), 1.5e9);
    assert.equal(parseByteSize('4096', 'x'), 4096);
    assert.throws(() => parseByteSize('lots', 'TFVLM_MEMORY_AVAILABLE'), /TFVLM_MEMORY_AVAILABLE: 'lots' is not a size/);
    assert.throws(() => parseByteSize('3 parsecs', 'x'), TfvlmError);
  });

  it('reads the machine, or the override', () => {
    const machine = availableMemory({});
    assert.ok(machine.bytes > 0 && machine.bytes <= 2 ** 50, `${machine.bytes}`);
    assert.deepEqual(availableMemory({ TFVLM_MEMORY_AVAILABLE: '2GB' }), { bytes: 2e9, source: 'TFVLM_MEMORY_AVAILABLE' });
  });

  it('refuses a need above what is available, naming each part', () => {
    const need = { what: 'models/llava', parts: [{ name: 'weights', bytes: 13.5e9 }, { name: 'KV cache (2048 tokens)', bytes: 1.07e9 }] };
    checkFits(need, { bytes: 15e9, source: 'test' });
    assert.throws(() => checkFits(need, { bytes: 8e9, source: 'MemAvailable' }), (e: unknown) => e instanceof TfvlmError
      && e.message.includes('models/llava does not fit in memory: it needs weights 13.50 GB + KV cache (2048 tokens) 1.07 GB = 14.57 GB, but 8.00 GB is available (MemAvailable)'));
  });
});
