/** Types for @ronomon/reed-solomon 6.0 (a native addon without its own): only what erasure.ts uses. */
declare module "@ronomon/reed-solomon" {
  /** An encoding context for k data and m parity shards: reusable, also concurrently. */
  export type Context = Buffer;
  export const MAX_K: number;
  export const MAX_M: number;
  export function create(k: number, m: number): Context;
  /**
   * Encodes the `targets` shards (bit i: shard i; data shards 0..k-1 live in buffer, parity shards k..k+m-1 in
   * parity) from at least k `sources`, asynchronously in libuv's thread pool.
   */
  export function encode(
    context: Context,
    sources: number,
    targets: number,
    buffer: Buffer,
    bufferOffset: number,
    bufferSize: number,
    parity: Buffer,
    parityOffset: number,
    paritySize: number,
    callback: (error?: Error) => void,
  ): void;
}
