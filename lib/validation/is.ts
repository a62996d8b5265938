/** Predicates and the one message format (style anchor: sharp lib/is.mjs). */
import { InvalidArgumentError } from '../errors.js';

export function describe(value: unknown): string {
    if (typeof value === 'string') return `${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)} of type string`;
    if (value === null) return 'null';
    if (Array.isArray(value)) return `an array of length ${value.length}`;
    if (typeof value === 'object') return `an object of type ${value.constructor?.name ?? 'Object'}`;
    if (typeof value === 'function') return 'a function';
    return `${String(value)} of type ${typeof value}`;
}

/** `Expected <what> for <name> but received <value> of type <type>` */
export function invalid(name: string, expected: string, value: unknown): InvalidArgumentError {
    return new InvalidArgumentError(`Expected ${expected} for ${name} but received ${describe(value)}`);
}

export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

export function number(name: string, v: unknown, min: number, max: number, opts: { exclusiveMin?: boolean } = {}): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
        throw invalid(name, max === 1e6 && opts.exclusiveMin ? `a number greater than ${min}` : `a number between ${min} and ${max}`, v);
    }
    if (opts.exclusiveMin && v === min) throw invalid(name, `a number greater than ${min}`, v);
    return v;
}

export function integer(name: string, v: unknown, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        throw invalid(name, max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer between ${min} and ${max}`, v);
    }
    return v;
}

export function string(name: string, v: unknown, { nonEmpty = false } = {}): string {
    if (typeof v !== 'string' || (nonEmpty && v.length === 0)) throw invalid(name, nonEmpty ? 'a non-empty string' : 'a string', v);
    return v;
}

export function boolean(name: string, v: unknown): boolean {
    if (typeof v !== 'boolean') throw invalid(name, 'a boolean', v);
    return v;
}

export function oneOf<T extends string>(name: string, v: unknown, values: readonly T[]): T {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
        throw invalid(name, `one of ${values.map((x) => `'${x}'`).join(', ')}`, v);
    }
    return v as T;
}

export function abortSignal(name: string, v: unknown): AbortSignal {
    if (!(v instanceof AbortSignal)) throw invalid(name, 'an AbortSignal', v);
    return v;
}

export function func<T extends (...args: never[]) => unknown>(name: string, v: unknown): T {
    if (typeof v !== 'function') throw invalid(name, 'a function', v);
    return v as T;
}

function distance(a: string, b: string): number {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++) {
        for (let j = 1; j <= b.length; j++) {
            d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
        }
    }
    return d[a.length]![b.length]!;
}

/** Rejects keys that are not options of `what`, with a typo hint (better-sqlite3 style). */
export function knownKeys(what: string, options: Record<string, unknown>, allowed: readonly string[]): void {
    for (const key of Object.keys(options)) {
        if (allowed.includes(key)) continue;
        let best: string | undefined;
        let bestD = Infinity;
        for (const a of allowed) {
            const d = distance(key, a);
            if (d < bestD) {
                bestD = d;
                best = a;
            }
        }
        const hint = best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 3)) ? ` Did you mean "${best}"?` : '';
        throw new InvalidArgumentError(`Unknown option "${key}" for ${what}.${hint} Known options: ${allowed.join(', ')}`);
    }
}

export function options(name: string, v: unknown): Record<string, unknown> {
    if (v === undefined) return {};
    if (!isPlainObject(v)) throw invalid(name, 'a plain object', v);
    return v;
}
