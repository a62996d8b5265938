import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../lib/errors.js';
import { resolveGenerateOptions, resolveLoadOptions } from '../../lib/options.js';

describe('generate options', () => {
    it('applies the documented defaults', () => {
        const o = resolveGenerateOptions(undefined);
        expect(o).toMatchObject({ strategy: 'greedy', maxTokens: 128, stop: [], seed: 0 });
    });

    it('reports out-of-range numbers in the one message format', () => {
        expect(() => resolveGenerateOptions({ strategy: 'sample', topP: 1.5 })).toThrow(
            'Expected a number between 0 and 1 for topP but received 1.5 of type number',
        );
        expect(() => resolveGenerateOptions({ strategy: 'sample', temperature: -1 })).toThrow(/for temperature but received -1/);
        expect(() => resolveGenerateOptions({ strategy: 'sample', temperature: 0 })).toThrow(/greater than 0 for temperature/);
        expect(() => resolveGenerateOptions({ maxTokens: 1.5 })).toThrow(/an integer between 0 and \d+ for maxTokens but received 1.5/);
        expect(() => resolveGenerateOptions({ strategy: 'sample', seed: -3 })).toThrow(/for seed but received -3/);
        expect(() => resolveGenerateOptions({ strategy: 'sample', topK: NaN })).toThrow(/for topK but received NaN/);
        expect(() => resolveGenerateOptions({ strategy: 'beams' })).toThrow(/one of 'greedy', 'sample', 'speculative', 'contrastive', 'scd', 'beam', 'dsbd' for strategy but received "beams"/);
        expect(() => resolveGenerateOptions({ strategy: 'beam', beams: 2.5 })).toThrow(/an integer between 1 and 256 for beams but received 2.5/);
        expect(() => resolveGenerateOptions({ strategy: 'beam', sample: true, temperature: 0 })).toThrow(/greater than 0 for temperature/);
    });

    it('hints at misspelled options and rejects options of another strategy', () => {
        expect(() => resolveGenerateOptions({ maxToken: 3 })).toThrow('Unknown option "maxToken" for generate(). Did you mean "maxTokens"?');
        expect(() => resolveGenerateOptions({ top_p: 0.5 })).toThrow(/Did you mean "topP"/);
        expect(() => resolveGenerateOptions({ strategy: 'greedy', temperature: 0.7 })).toThrow(InvalidArgumentError);
        expect(() => resolveGenerateOptions({ stop: [''] })).toThrow(/non-empty string/);
        expect(() => resolveGenerateOptions({ signal: {} })).toThrow(/an AbortSignal for signal/);
        expect(() => resolveGenerateOptions('fast')).toThrow(/a plain object/);
    });

    it('accepts a full sampling configuration', () => {
        const o = resolveGenerateOptions({ strategy: 'sample', temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05, seed: 7, stop: '\n' });
        expect(o).toMatchObject({ temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05, seed: 7, stop: ['\n'] });
    });
});

describe('load options', () => {
    it('validates sizes and enums', () => {
        expect(resolveLoadOptions('loadModel()', {}).contextSize).toBe(2048);
        expect(() => resolveLoadOptions('loadModel()', { contextSize: 8 })).toThrow(/between 16 and \d+ for contextSize/);
        expect(() => resolveLoadOptions('loadModel()', { sequences: 300 })).toThrow(/between 1 and 256 for sequences/);
        expect(() => resolveLoadOptions('loadModel()', { flashAttention: 'yes' })).toThrow(/'auto', 'on', 'off'/);
        expect(() => resolveLoadOptions('loadModel()', { contextsize: 512 })).toThrow(/Did you mean "contextSize"/);
    });
});
