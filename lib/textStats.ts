/** Quality figures of generated token sequences, for the benchmark and the demo. */

/** Fraction of n-grams that already occurred earlier in the output. */
export function repeatedNgrams(tokens: readonly number[], n: number): number {
    const seen = new Set<string>();
    let rep = 0;
    let all = 0;
    for (let i = 0; i + n <= tokens.length; i++) {
        const k = tokens.slice(i, i + n).join(',');
        if (seen.has(k)) rep++;
        seen.add(k);
        all++;
    }
    return all ? rep / all : 0;
}

/** Distinct n-grams / all n-grams. */
export function distinct(tokens: readonly number[], n: number): number {
    const s = new Set<string>();
    let all = 0;
    for (let i = 0; i + n <= tokens.length; i++, all++) s.add(tokens.slice(i, i + n).join(','));
    return all ? s.size / all : 0;
}
