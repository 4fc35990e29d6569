// Type declarations of rill-llm.

export interface EngineOptions {
  /** Threads for the matrix products (default: the machine's logical cores). */
  threads?: number;
  /** 'auto' (default): relaxed SIMD where the JS engine validates and computes it right, else SIMD128. */
  build?: 'auto' | 'relaxed' | 'simd';
}

export interface RuntimeInfo {
  build: 'relaxed' | 'simd';
  kernels: 'relaxed-simd' | 'simd128';
  /** Whether a*b+c in the kernels rounds once (then logits are bit-identical to the reference). */
  maddFused: boolean;
  threads: number;
}

export interface LoadProgress {
  /** download: from the network (into the engine and the cache at once); cache: from the model cache; load: from a file, Blob or bytes. */
  phase: 'download' | 'cache' | 'load';
  loaded: number;
  /** 0 when the size is unknown */
  total: number;
}

/** Where the model cache lives. Browsers: 'auto' is OPFS, else the Cache API. Node: a directory. */
export interface CacheOptions {
  cacheStore?: 'auto' | 'opfs' | 'cache-api' | 'directory';
  /** Node: the cache folder (default $RILL_CACHE_DIR, else ~/.cache/rill-llm, ~/Library/Caches/rill-llm, %LOCALAPPDATA%\\rill-llm\\cache). */
  cacheDir?: string;
}

export interface LoadOptions extends CacheOptions {
  /** Context size in tokens (default: the model's training context, at most 4096). */
  contextSize?: number;
  onProgress?: (progress: LoadProgress) => void;
  /** Bytes sources: copy them instead of transferring (detaching) their ArrayBuffer. */
  copy?: boolean;
  /** http(s) URLs: true (default) reads the cache, or downloads into it; 'reload' downloads again and replaces the entry; false bypasses it. */
  cache?: boolean | 'reload';
  /** The file's SHA-256 (64 hex digits): a download that differs rejects and is not cached. */
  sha256?: string;
  /** Stops the load; nothing is cached. */
  signal?: AbortSignal;
  /** A Jinja chat template to use instead of the file's. */
  chatTemplate?: string;
}

export interface CacheEntry {
  url: string;
  size: number;
  etag: string | null;
  lastModified: string | null;
  /** The SHA-256 the download was checked against, when the server or the caller stated one. */
  sha256: string | null;
  storedAt: string;
}

export interface ModelInfo {
  architecture: 'llama' | 'qwen2' | 'qwen3' | 'qwen35';
  nVocab: number;
  /** general.name of the file, else the architecture. */
  name: string;
  nCtx: number;
  nCtxTrain: number;
  nLayer: number;
  nEmbd: number;
  /** The file has a multi-token-prediction layer (speculative decoding available). */
  mtp: boolean;
  /** Tokens the context holds, and the prefix-reuse checkpoints kept (count, bytes). */
  nPast: number;
  checkpoints: number;
  checkpointBytes: number;
  weightBytes: number;
  fileBytes: number;
  /** KV cache and recurrent state, in bytes. */
  stateBytes: number;
  /** Bytes of wasm memory in use after loading. */
  memoryBytes: number;
  threads: number;
  nPast: number;
  bos: number;
  eos: number;
  addBos: boolean;
  bosText?: string;
  eosText?: string;
  chatTemplate: string | null;
  loadMs: number;
  readMs: number;
  /** Where the bytes came from; for URLs, cache: 'hit' | 'stored' | 'off' | 'not stored (...)', store: the cache's kind. */
  source: { kind: 'url' | 'path' | 'blob' | 'bytes'; url?: string; cache?: string; store?: string | null };
}

export interface SamplingOptions {
  /** Default 256. */
  maxTokens?: number;
  /** <= 0: greedy. Default 0.8. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  presencePenalty?: number;
  /** Same seed, same tokens. Default: random. */
  seed?: number;
  /** Generation ends before the first occurrence of any of these strings. */
  stop?: string | string[];
  /** Stops generation between tokens; the result then has stopReason 'abort'. */
  signal?: AbortSignal;
  /** Continue after the current context instead of starting afresh. */
  keepContext?: boolean;
  /** Default true: the prompt's tokens shared with the evaluated text (or a checkpoint of it) are not evaluated again. */
  reusePrefix?: boolean;
  /** Speculative decoding with the file's MTP layer (Qwen 3.5), when it has one. Same output. Default true. */
  speculative?: boolean;
  /** Drafts per step, 1..3. Default: 0 to 2 per step, as measured acceptance and cost make pay. */
  draftTokens?: number;
  /**
   * A GBNF grammar (llama.cpp's format, start rule `root`) the reply must follow: only tokens it
   * allows are sampled, and generation ends (stopReason 'grammar') when nothing more may follow.
   * Special tokens can be named as `<|name|>` or `<[id]>`.
   */
  grammar?: string;
  /** The reply as JSON: any object, or one that fits a JSON Schema (the common subset; others refused by keyword). */
  responseFormat?: ResponseFormat;
  /** Subtracted from a recent token's logit once per time it occurs (0: off). */
  frequencyPenalty?: number;
  /** Added to these tokens' logits before anything else (token id -> bias; -Infinity: never). */
  logitBias?: Record<number, number> | Map<number, number>;
  /** Record each generated token's log-probability (result.logprobs); decodes one token a step. */
  logprobs?: boolean;
  /** With logprobs: this many best alternatives per token, 0..20. */
  topLogprobs?: number;
}

export interface TokenLogprob { token: number; piece: string; logprob: number; top: { token: number; piece: string; logprob: number }[]; }

/** A tool in OpenAI's shape. */
export interface Tool { type: 'function'; function: { name: string; description?: string; parameters?: object }; }
export interface ToolCall { id: string; type: 'function'; function: { name: string; arguments: string } }

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; schema: object | string }
  | { type: 'json_schema'; json_schema: { name?: string; schema: object; strict?: boolean } };

export interface ChatMessage { role: 'system' | 'user' | 'assistant' | 'tool' | string; content: string | unknown; [key: string]: unknown; }

export interface ChatOptions extends SamplingOptions {
  /** A Jinja chat template to use instead of the model's. */
  template?: string;
  /** Default true. */
  addGenerationPrompt?: boolean;
  /** Extra template variables, e.g. { enable_thinking: false }. */
  templateVariables?: Record<string, unknown>;
  /** Offered to the model through the template; the reply's calls come back in result.toolCalls. */
  tools?: Tool[];
  /** 'auto' (default), 'none' (the tools are not offered), 'required' or one function: the reply is one well-formed call. */
  toolChoice?: 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };
}

export interface CompletionResult {
  text: string;
  tokens: number[];
  /** 'grammar': the grammar or schema is complete and nothing may follow. */
  stopReason: 'eos' | 'length' | 'stop' | 'abort' | 'context' | 'grammar';
  promptTokens: number;
  /** Prompt tokens kept from the previous text instead of evaluated again (prefix reuse). */
  reusedTokens: number;
  generatedTokens: number;
  timings: {
    promptMs: number; promptTokensPerSecond: number; generateMs: number; generateTokensPerSecond: number;
    /** Whether MTP drafting ran; drafts proposed and accepted; time drafting and evaluating; main-model evaluations. */
    speculative: boolean; draftTokens: number; acceptedDraftTokens: number; draftMs: number; verifyMs: number; steps: number;
  };
  /** chat(): the rendered prompt and the template used. */
  prompt?: string;
  template?: string;
  /** chat() with tools: the calls the reply makes, and its text beside them. */
  toolCalls?: ToolCall[];
  content?: string;
  /** With logprobs: one record per generated token. */
  logprobs?: TokenLogprob[];
}

/** Text pieces as they are generated; `result` resolves when generation ends. */
export interface Completion extends AsyncIterable<string> {
  readonly result: Promise<CompletionResult>;
  text(): Promise<string>;
}

export type ModelSource = string | URL | Blob | ArrayBuffer | ArrayBufferView;

export interface Engine {
  readonly runtime: RuntimeInfo;
  /** Set after load(). */
  readonly info: ModelInfo | null;
  /** A URL, a file path (Node), a File/Blob, or the bytes of a GGUF file. */
  load(source: ModelSource, options?: LoadOptions): Promise<ModelInfo>;
  complete(prompt: string, options?: SamplingOptions): Completion;
  chat: ((messages: ChatMessage[], options?: ChatOptions) => Completion) & {
    /** OpenAI's chat completions: the response object, or with stream: true an async iterable of chunks. */
    completions: { create(params: Record<string, unknown>, options?: { signal?: AbortSignal }): Promise<any> };
  };
  renderChat(messages: ChatMessage[], options?: ChatOptions): { text: string; template: string };
  /**
   * Embeddings as llama.cpp makes them: one vector per text, the output-normed final hidden states
   * pooled as the file's pooling_type says (or `pooling`), L2-normalised unless normalize is false.
   * Empties the context.
   */
  embed(texts: string | string[], options?: { normalize?: boolean; pooling?: 'mean' | 'cls' | 'last' }): Promise<Float32Array[]>;
  /** OpenAI's embeddings: { input, encoding_format: 'float' | 'base64', dimensions } -> { object: 'list', data, model, usage }. */
  readonly embeddings: { create(params: { input: string | string[]; model?: string; encoding_format?: 'float' | 'base64'; dimensions?: number }): Promise<any> };
  tokenize(text: string, options?: { addSpecial?: boolean; parseSpecial?: boolean }): Promise<number[]>;
  detokenize(ids: ArrayLike<number>, options?: { special?: boolean }): Promise<string>;
  /** Evaluates tokens after the current context; returns how many. */
  /** logits: false skips computing the last token's logits (more tokens follow). */
  evaluate(tokens: ArrayLike<number>, options?: { logits?: boolean }): Promise<number>;
  /** Milliseconds per category (matmul per format, lm_head, deltanet, attention, total) since the last clear. */
  profile(options?: { clear?: boolean }): Promise<Record<string, number> & { tokens: number }>;
  /** Bytes of wasm memory the engine holds. */
  memoryBytes(): Promise<number>;
  /** Memory-read bandwidth of this build in GB/s (a SIMD read loop over mb megabytes). */
  probeBandwidth(options?: { mb?: number; threads?: number; repeats?: number }): Promise<number>;
  /** Logits of the last evaluated token. */
  logits(): Promise<Float32Array>;
  /** A snapshot of the context (tokens, caches, recurrent state, last logits), versioned and tied to the model. */
  saveState(): Promise<Uint8Array>;
  /** Restores a saveState() snapshot; resolves to its token count. Rejects a state of another model, version, or a corrupt one. */
  loadState(bytes: Uint8Array | ArrayBuffer): Promise<number>;
  /** Bounds the checkpoints that prefix reuse keeps (default 8 and 128 MB). */
  setCheckpointBudget(budget?: { count?: number; bytes?: number }): Promise<void>;
  /** load()'s info with the context's current nPast, checkpoints, checkpointBytes. */
  contextInfo(): Promise<ModelInfo>;
  reset(): Promise<void>;
  unload(): Promise<void>;
  dispose(): Promise<void>;
}

/** Starts the engine in a Web Worker (browsers) or a worker thread (Node). Browsers need cross-origin isolation. */
export function createEngine(options?: EngineOptions): Promise<Engine>;

/** Throws the TypeError or RangeError complete()/chat() would for these options. */
export function checkOptions(options: ChatOptions): void;

/** The model cache, without an engine. */
export function listCached(options?: CacheOptions): Promise<CacheEntry[]>;
/** Removes a URL's entry; resolves to whether there was one. */
export function deleteCached(url: string | URL, options?: CacheOptions): Promise<boolean>;
/** Removes every entry; resolves to how many there were. */
export function clearCache(options?: CacheOptions): Promise<number>;
export function cacheLocation(options?: CacheOptions): Promise<{ store: 'directory' | 'opfs' | 'cache-api'; where: string }>;

/** Renders a Jinja chat template (the subset real GGUF templates use) with the given variables. */
export function renderChat(template: string, variables: Record<string, unknown>): string;
/** ChatML, or Llama 3's format for Llama 3 vocabularies: for models without a template. */
export function builtinTemplate(info: Pick<ModelInfo, 'architecture' | 'bosText'> | null): string;
