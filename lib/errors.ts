/**
 * Typed errors of llama-duet. Every error carries a stable `code` (Node `ERR_*` style) shared with
 * the native layer (`native/napi/errors.h`); match on `code`, not on the message.
 */

export const ErrorCode = {
    INVALID_ARGUMENT: 'ERR_LLAMA_DUET_INVALID_ARGUMENT',
    DISPOSED: 'ERR_LLAMA_DUET_DISPOSED',
    BUSY: 'ERR_LLAMA_DUET_BUSY',
    MODEL_NOT_FOUND: 'ERR_LLAMA_DUET_MODEL_NOT_FOUND',
    NOT_GGUF: 'ERR_LLAMA_DUET_NOT_GGUF',
    CORRUPT_GGUF: 'ERR_LLAMA_DUET_CORRUPT_GGUF',
    UNSUPPORTED_ARCHITECTURE: 'ERR_LLAMA_DUET_UNSUPPORTED_ARCHITECTURE',
    MODEL_LOAD_FAILED: 'ERR_LLAMA_DUET_MODEL_LOAD_FAILED',
    INCOMPATIBLE_MODELS: 'ERR_LLAMA_DUET_INCOMPATIBLE_MODELS',
    CONTEXT_CREATE_FAILED: 'ERR_LLAMA_DUET_CONTEXT_CREATE_FAILED',
    CONTEXT_OVERFLOW: 'ERR_LLAMA_DUET_CONTEXT_OVERFLOW',
    DECODE_FAILED: 'ERR_LLAMA_DUET_DECODE_FAILED',
    ABORTED: 'ERR_LLAMA_DUET_ABORTED',
    KV_FAILED: 'ERR_LLAMA_DUET_KV_FAILED',
    IO: 'ERR_LLAMA_DUET_IO',
    NATIVE: 'ERR_LLAMA_DUET_NATIVE',
    ADDON_NOT_FOUND: 'ERR_LLAMA_DUET_ADDON_NOT_FOUND',
    QUEUE_FULL: 'ERR_LLAMA_DUET_QUEUE_FULL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every error this library throws. */
export class LlamaDuetError extends Error {
    readonly code: ErrorCode;

    constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
        super(message, options);
        this.name = 'LlamaDuetError';
        this.code = code;
    }
}

/** An option or argument failed validation; nothing was sent to the native layer. */
export class InvalidArgumentError extends LlamaDuetError {
    constructor(message: string) {
        super(ErrorCode.INVALID_ARGUMENT, message);
        this.name = 'InvalidArgumentError';
    }
}

/** The object was disposed (or is being disposed) before or during the call. */
export class DisposedError extends LlamaDuetError {
    constructor(what = 'object') {
        super(ErrorCode.DISPOSED, `This ${what} has been disposed`);
        this.name = 'DisposedError';
    }
}

/** A model file could not be loaded: missing, not GGUF, corrupt/truncated, unsupported or rejected by llama.cpp. */
export class ModelLoadError extends LlamaDuetError {
    readonly path: string;

    constructor(code: ErrorCode, message: string, path: string) {
        super(code, message);
        this.name = 'ModelLoadError';
        this.path = path;
    }
}

/** The expert and the amateur do not share a vocabulary (llama.cpp's speculative compatibility rules). */
export class IncompatibleModelsError extends LlamaDuetError {
    constructor(reason: string) {
        super(ErrorCode.INCOMPATIBLE_MODELS, `The expert and amateur models are incompatible: ${reason}`);
        this.name = 'IncompatibleModelsError';
    }
}

/** What a generation had produced when it was aborted. */
export interface PartialGeneration {
    text: string;
    tokens: number[];
}

/** The generation was stopped by its AbortSignal; `partial` holds what was streamed before. */
export class GenerationAbortedError extends LlamaDuetError {
    readonly partial: PartialGeneration;

    constructor(partial: PartialGeneration, reason?: unknown) {
        super(ErrorCode.ABORTED, 'The generation was aborted', { cause: reason });
        this.name = 'AbortError';
        this.partial = partial;
    }
}

/** More generations are waiting than the model/pair's `maxQueued` allows (HTTP servers answer 429). */
export class QueueFullError extends LlamaDuetError {
    readonly maxQueued: number;

    constructor(maxQueued: number, running: number) {
        super(ErrorCode.QUEUE_FULL, `The generation queue is full (${maxQueued} waiting, ${running} running); retry later or load with a larger maxQueued`);
        this.name = 'QueueFullError';
        this.maxQueued = maxQueued;
    }
}

/** Any other failure reported by the native layer (decode failure, context overflow, I/O…). */
export class NativeError extends LlamaDuetError {
    constructor(code: ErrorCode, message: string) {
        super(code, message);
        this.name = 'NativeError';
    }
}

const loadCodes: ReadonlySet<string> = new Set([
    ErrorCode.MODEL_NOT_FOUND,
    ErrorCode.NOT_GGUF,
    ErrorCode.CORRUPT_GGUF,
    ErrorCode.UNSUPPORTED_ARCHITECTURE,
    ErrorCode.MODEL_LOAD_FAILED,
]);

/**
 * Converts an error thrown or rejected by the addon into a typed error. `stack` is the JS stack
 * captured before the call went async, so the error points at the caller's line.
 * @internal
 */
export function fromNative(err: unknown, stack?: string, path?: string): LlamaDuetError {
    if (err instanceof LlamaDuetError) return err;
    const e = err as { code?: unknown; message?: unknown };
    const message = typeof e?.message === 'string' ? e.message : String(err);
    const code = (typeof e?.code === 'string' && (Object.values(ErrorCode) as string[]).includes(e.code)
        ? e.code
        : ErrorCode.NATIVE) as ErrorCode;
    let out: LlamaDuetError;
    if (code === ErrorCode.INVALID_ARGUMENT) out = new InvalidArgumentError(message);
    else if (code === ErrorCode.DISPOSED) out = new DisposedError();
    else if (code === ErrorCode.INCOMPATIBLE_MODELS) out = new IncompatibleModelsError(message);
    else if (loadCodes.has(code)) out = new ModelLoadError(code, message, path ?? '');
    else out = new NativeError(code, message);
    if (code === ErrorCode.DISPOSED) out.message = message;
    if (stack) out.stack = `${out.name}: ${out.message}\n${stack.split('\n').slice(1).join('\n')}`;
    return out;
}
