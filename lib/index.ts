/** llama-duet: expert/amateur GGUF pairs for Node.js. Public exports only. */
export { loadModel, loadPair, LlamaModel, ModelPair } from './models.js';
export type { ModelInfo, PairOptions } from './models.js';
export type { GenerateOptions, LoadOptions, Strategy } from './options.js';
export { generateDefaults, loadDefaults, strategies } from './options.js';
export type { BeamCandidate, ChatMessage, FinishReason, GenerationChunk, GenerationResult, GenerationStats, GenerationStream, Prompt } from './Decoder.js';
export { Sequence } from './forest.js';
export type {
    DraftNode,
    DraftTree,
    ForestVerification,
    SequenceModel,
    TopLogprob,
    VerifiedNode,
    VerifiedTree,
    VerifyOptions,
    VerifyRule,
} from './forest.js';
export { makePair, shapes } from './synthetic.js';
export { systemInfo } from './system.js';
export { inspect, summarize } from './inspect.js';
export type { GgufSummary, InspectReport } from './inspect.js';
export { demoPair } from './paths.js';
export type { SystemInfo } from './system.js';
export type { MakePairOptions, PairFiles, ShapeName } from './synthetic.js';
export {
    DisposedError,
    ErrorCode,
    GenerationAbortedError,
    IncompatibleModelsError,
    InvalidArgumentError,
    LlamaDuetError,
    ModelLoadError,
    NativeError,
    QueueFullError,
} from './errors.js';
export type { PartialGeneration } from './errors.js';
export { serve } from './serve/server.js';
export type { DuetServer, ServeOptions } from './serve/server.js';
