/** `llama-duet make-pair`: a synthetic random-weight pair (tests, benchmarks). */
import { makePair as make, shapes, type ShapeName } from '../synthetic.js';
import { num, parse, UsageError } from './common.js';

export const usage = `llama-duet make-pair --out DIR [--shape ${Object.keys(shapes).join('|')}] [--epsilon E] [--amateur-layers K]
                       [--seed S] [--vocab PATH | --tiny-vocab N]
    Writes DIR/expert.gguf and DIR/amateur.gguf: a random-weight llama expert and an amateur made of its
    first K layers (same embeddings and head). Deterministic for a seed. The text such a pair writes is noise;
    the demo pair shipped in the package (llama-duet demo) is trained.`;

export async function makePair(args: string[]): Promise<void> {
    const { values } = parse(
        args,
        {
            shape: { type: 'string' },
            out: { type: 'string' },
            epsilon: { type: 'string' },
            'amateur-layers': { type: 'string' },
            seed: { type: 'string' },
            vocab: { type: 'string' },
            'tiny-vocab': { type: 'string' },
        },
        usage,
    );
    if (values.help) {
        process.stdout.write(usage + '\n');
        return;
    }
    if (!values.out) throw new UsageError('make-pair needs --out DIR', usage);
    const shape = values.shape ?? 'tiny';
    if (!(shape in shapes)) throw new UsageError(`--shape must be one of ${Object.keys(shapes).join(', ')}`, usage);
    const t0 = performance.now();
    const tinyVocab = num(values['tiny-vocab'], 'tiny-vocab');
    const epsilon = num(values.epsilon, 'epsilon');
    const amateurLayers = num(values['amateur-layers'], 'amateur-layers');
    const seed = num(values.seed, 'seed');
    const files = await make({
        out: values.out,
        shape: shape as ShapeName,
        ...(epsilon !== undefined ? { epsilon } : {}),
        ...(amateurLayers !== undefined ? { amateurLayers } : {}),
        ...(seed !== undefined ? { seed } : {}),
        ...(tinyVocab !== undefined ? { vocab: { tiny: tinyVocab } } : values.vocab !== undefined ? { vocab: values.vocab } : {}),
    });
    console.log(`expert:  ${files.expert} (${(files.expertBytes / 2 ** 20).toFixed(1)} MiB)`);
    console.log(`amateur: ${files.amateur} (${(files.amateurBytes / 2 ** 20).toFixed(1)} MiB)`);
    console.log(`vocab:   ${files.nVocab} tokens; ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
