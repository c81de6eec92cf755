/**
 * The one client of NanoGen's REST API (CONTRACT §4, §5).
 *
 * Every call carries `Authorization: tma <initData>`; every failure becomes
 * an `ApiError` whose `kind` the screens turn into a text in the user's
 * language (offline and timeouts included); `Retry-After` is read into
 * seconds. `Submission` gives each submit a fresh `Idempotency-Key`, reused
 * while it is in flight and after an unknown outcome, so a double tap or a
 * retry after a lost answer charges once.
 */

/**
 * What went wrong, one kind per code of CONTRACT §4 (plus what the network and
 * API Gateway add), so each has its own text in the user's language (errors.ts).
 */
export type ErrorKind =
  | "invalid_request"
  | "too_large" // 413 from API Gateway: the body is over its limit
  | "unauthorized"
  | "insufficient_credits"
  | "forbidden"
  | "user_banned"
  | "not_found"
  | "not_cancellable"
  | "conflict"
  | "already_redeemed"
  | "promo_exhausted"
  | "idempotency_key_reused"
  | "rate_limited"
  | "too_many_active"
  | "unavailable" // 503 temporarily_unavailable (or update_in_progress), with Retry-After
  | "server" // 500 internal_error, or any other 5xx
  | "timeout" // no answer in time: ours, or API Gateway's 504
  | "offline";

export class ApiError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
    readonly requestId?: string,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The server may or may not have acted: a retry must reuse the same idempotency key. */
  get outcomeUnknown(): boolean {
    return this.kind === "offline" || this.kind === "timeout" || this.kind === "server" || this.kind === "unavailable";
  }
}

const KIND_BY_CODE: ReadonlyMap<string, ErrorKind> = new Map(Object.entries({
  invalid_request: "invalid_request",
  unauthorized: "unauthorized",
  insufficient_credits: "insufficient_credits",
  forbidden: "forbidden",
  user_banned: "user_banned",
  not_found: "not_found",
  not_cancellable: "not_cancellable",
  conflict: "conflict",
  already_redeemed: "already_redeemed",
  promo_exhausted: "promo_exhausted",
  idempotency_key_reused: "idempotency_key_reused",
  rate_limited: "rate_limited",
  too_many_active: "too_many_active",
  temporarily_unavailable: "unavailable",
  update_in_progress: "unavailable",
  internal_error: "server",
} satisfies Record<string, ErrorKind>));

function kindOf(status: number, code: string): ErrorKind {
  // API Gateway's own answers carry a generic code: its status says more (infra/template.py).
  if (status === 413) return "too_large";
  if (status === 504) return "timeout";
  const byCode = KIND_BY_CODE.get(code);
  if (byCode) return byCode;
  if (status === 401) return "unauthorized";
  if (status === 402) return "insufficient_credits";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  if (status === 429) return "rate_limited";
  if (status === 503) return "unavailable";
  if (status >= 500) return "server";
  return "invalid_request";
}

/** `Retry-After` as seconds: a number of seconds or an HTTP date (RFC 9110). */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

export interface ClientOptions {
  initData: () => string;
  fetch?: typeof fetch;
  baseUrl?: string;
  timeoutMs?: number;
  isOnline?: () => boolean;
}

export interface RequestOptions {
  body?: unknown;
  idempotencyKey?: string;
  auth?: boolean;
}

export type Json = Record<string, unknown>;

export class ApiClient {
  private readonly fetchImpl: typeof fetch;
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly isOnline: () => boolean;

  constructor(private readonly options: ClientOptions) {
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.baseUrl = options.baseUrl ?? "";
    this.timeoutMs = options.timeoutMs ?? 15000;
    this.isOnline = options.isOnline ?? (() => typeof navigator === "undefined" || navigator.onLine !== false);
  }

  get<T = Json>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  post<T = Json>(path: string, body?: unknown, idempotencyKey?: string): Promise<T> {
    return this.request<T>("POST", path, { body: body ?? {}, idempotencyKey });
  }

  put<T = Json>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PUT", path, { body });
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    if (!this.isOnline()) throw new ApiError("offline", 0, "offline", "No connection.");
    const headers: Record<string, string> = { Accept: "application/json" };
    if (options.auth !== false) headers.Authorization = `tma ${this.options.initData()}`;
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let response: Response;
    try {
      response = await this.fetchImpl(this.baseUrl + path, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: controller.signal,
      });
    } catch (error) {
      if (controller.signal.aborted) throw new ApiError("timeout", 0, "timeout", "The server did not answer in time.");
      throw new ApiError("offline", 0, "offline", error instanceof Error ? error.message : "Network error.");
    } finally {
      clearTimeout(timer);
    }
    const data = (await response.json().catch(() => null)) as Json | null;
    if (response.ok) return data as T;
    const error = (data?.error ?? {}) as { code?: string; message?: string; request_id?: string };
    const code = error.code ?? `http_${response.status}`;
    throw new ApiError(
      kindOf(response.status, code),
      response.status,
      code,
      error.message ?? response.statusText,
      parseRetryAfter(response.headers.get("Retry-After")),
      error.request_id ?? response.headers.get("X-Request-Id") ?? undefined,
    );
  }
}

export function newIdempotencyKey(): string {
  if (typeof crypto !== "undefined" && "randomUUID" in crypto) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/**
 * One user action that must happen once: a submit while the previous one is
 * in flight joins it (same request, same key); a submit after an unknown
 * outcome (offline, timeout, 5xx) reuses the key, so the server replays
 * instead of charging again; after an answer the next submit gets a new key.
 */
export class Submission<T> {
  private key: string | undefined;
  private inFlight: Promise<T> | undefined;

  constructor(
    private readonly send: (idempotencyKey: string) => Promise<T>,
    private readonly makeKey: () => string = newIdempotencyKey,
  ) {}

  get busy(): boolean {
    return this.inFlight !== undefined;
  }

  submit(): Promise<T> {
    if (this.inFlight) return this.inFlight;
    const key = (this.key ??= this.makeKey());
    this.inFlight = this.send(key).then(
      (value) => {
        this.key = undefined;
        return value;
      },
      (error: unknown) => {
        if (!(error instanceof ApiError && error.outcomeUnknown)) this.key = undefined;
        throw error;
      },
    );
    const settle = () => {
      this.inFlight = undefined;
    };
    this.inFlight.then(settle, settle);
    return this.inFlight;
  }

  /** The draft changed: whatever comes next is a new request. */
  reset(): void {
    if (!this.inFlight) this.key = undefined;
  }
}
