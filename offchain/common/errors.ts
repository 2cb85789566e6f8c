/**
 * The one error type of the off-chain software (services, the node, the CLIs and the tasks): a stable code
 * (listed in docs/errors.md, never reused for another meaning), an HTTP status, a short message, details that
 * explain it, and the cause it wraps. Services answer it as {"statusCode", "code", "error", ...details}; CLIs
 * print its message and exit 2 when its status is a 4xx (the caller's input), 1 otherwise.
 *
 * A domain declares its codes once, as a table of code -> status, and raises them through `errorFactory`, so a
 * code's status lives in one place and a typo in a code is a type error.
 */
export interface EdgeErrorOptions {
  /** HTTP status; 400 (bad input) unless given. */
  status?: number;
  /** Values that explain the error; services add them to the JSON answer. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class EdgeError<Code extends string = string> extends Error {
  override name = "EdgeError";
  readonly code: Code;
  readonly status: number;
  declare readonly details?: Record<string, unknown>;

  constructor(code: Code, message: string, options: EdgeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? 400;
    if (options.details) (this as { details?: Record<string, unknown> }).details = options.details;
  }

  /** True when the caller's input is at fault (a 4xx). */
  get isInputError(): boolean {
    return this.status >= 400 && this.status < 500;
  }
}

export type ErrorTable = Readonly<Record<string, number>>;

/** A constructor of EdgeErrors for one domain's table of codes: `raise(code, message, { details, cause })`. */
export function errorFactory<T extends ErrorTable>(table: T) {
  return (code: keyof T & string, message: string, options: Omit<EdgeErrorOptions, "status"> = {}) =>
    new EdgeError(code, message, { ...options, status: table[code] });
}

export const isEdgeError = (error: unknown): error is EdgeError => error instanceof EdgeError;

/** The message of anything thrown, for a log line or a wrapped error. */
export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * A named subclass of EdgeError under one code and status, for modules whose callers tell their errors apart by
 * class (a CLI exits 2 on an input error, a parser's caller rewraps it):
 * `export const PeriodFormatError = errorClass("PeriodFormatError", "PERIOD_FORMAT_INVALID")`.
 */
export function errorClass<Code extends string>(name: string, code: Code, status = 400) {
  return class extends EdgeError<Code> {
    override name = name;
    constructor(message: string, options: Omit<EdgeErrorOptions, "status"> = {}) {
      super(code, message, { ...options, status });
    }
  };
}
