import { describe, expect, it, vi } from "vitest";
import { ApiClient, ApiError, parseRetryAfter, Submission } from "../src/api";

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

function client(fetchImpl: (url: string, init: RequestInit) => Promise<Response>, timeoutMs = 1000) {
  return new ApiClient({
    initData: () => "query_id=1&user=%7B%22id%22%3A1%7D&auth_date=1&hash=abc",
    fetch: fetchImpl as typeof fetch,
    timeoutMs,
    isOnline: () => true,
  });
}

async function failure(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error("the call did not fail");
}

describe("ApiClient", () => {
  it("signs every call with the initData exactly as Telegram gave it", async () => {
    const fetchImpl = vi.fn(async () => json(200, { credits: 10 }));
    await client(fetchImpl).get("/api/user/me");
    const [url, init] = fetchImpl.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("/api/user/me");
    expect((init.headers as Record<string, string>).Authorization).toBe(
      "tma query_id=1&user=%7B%22id%22%3A1%7D&auth_date=1&hash=abc",
    );
  });

  it("sends JSON bodies and the Idempotency-Key it is given", async () => {
    const fetchImpl = vi.fn(async () => json(202, { generation: {}, credits: 9 }));
    await client(fetchImpl).post("/api/generation", { prompt: "a cat" }, "key-1");
    const init = (fetchImpl.mock.calls[0] as unknown as [string, RequestInit])[1];
    const headers = init.headers as Record<string, string>;
    expect(init.method).toBe("POST");
    expect(init.body).toBe('{"prompt":"a cat"}');
    expect(headers["Content-Type"]).toBe("application/json");
    expect(headers["Idempotency-Key"]).toBe("key-1");
  });

  it.each([
    [400, "invalid_request", "invalid_request"],
    [401, "unauthorized", "unauthorized"],
    [402, "insufficient_credits", "insufficient_credits"],
    [403, "forbidden", "forbidden"],
    [403, "user_banned", "user_banned"],
    [404, "not_found", "not_found"],
    [409, "not_cancellable", "not_cancellable"],
    [409, "conflict", "conflict"],
    [409, "already_redeemed", "already_redeemed"],
    [409, "promo_exhausted", "promo_exhausted"],
    [422, "idempotency_key_reused", "idempotency_key_reused"],
    [429, "rate_limited", "rate_limited"],
    [429, "too_many_active", "too_many_active"],
    [500, "internal_error", "server"],
    [503, "temporarily_unavailable", "unavailable"],
    [503, "update_in_progress", "unavailable"],
    // API Gateway's own answers (infra/template.py GATEWAY_RESPONSES): the status says more than the code.
    [413, "invalid_request", "too_large"],
    [504, "internal_error", "timeout"],
    [403, "invalid_request", "invalid_request"],
    [418, "some_future_code", "invalid_request"],
  ])("maps %i %s to the kind %s, keeping the code and message", async (status, code, kind) => {
    const api = client(async () => json(status, { error: { code, message: "Because." } }));
    const error = await failure(api.get("/api/x"));
    expect(error.kind).toBe(kind);
    expect(error.status).toBe(status);
    expect(error.code).toBe(code);
    expect(error.message).toBe("Because.");
  });

  it.each([
    [502, "server"],
    [503, "unavailable"],
    [504, "timeout"],
    [413, "too_large"],
    [409, "conflict"],
    [429, "rate_limited"],
  ])("maps a %i without a JSON body by its status to %s", async (status, kind) => {
    const api = client(async () => new Response("<html>Gateway</html>", { status }));
    expect((await failure(api.get("/api/x"))).kind).toBe(kind);
  });

  it("counts a 503 as an unknown outcome, so a retried submit keeps its Idempotency-Key", async () => {
    const api = client(async () => json(503, { error: { code: "temporarily_unavailable", message: "Busy." } }, { "Retry-After": "2" }));
    const error = await failure(api.post("/api/generation", {}));
    expect(error.outcomeUnknown).toBe(true);
    expect(error.retryAfter).toBe(2);
  });

  it("keeps the request id of a 500", async () => {
    const api = client(async () =>
      json(500, { error: { code: "internal_error", message: "Oops.", request_id: "req-42" } }),
    );
    expect((await failure(api.get("/api/x"))).requestId).toBe("req-42");
  });

  it("reads Retry-After of a 429 as seconds", async () => {
    const api = client(async () => json(429, { error: { code: "rate_limited", message: "Slow down." } }, { "Retry-After": "17" }));
    const error = await failure(api.post("/api/generation", {}));
    expect(error.retryAfter).toBe(17);
  });

  it("reads Retry-After given as an HTTP date", () => {
    const now = Date.parse("2026-12-01T18:00:00Z");
    expect(parseRetryAfter("Tue, 01 Dec 2026 18:00:30 GMT", now)).toBe(30);
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
  });

  it("says offline when the network fails and timeout when the server is too slow", async () => {
    const offline = client(async () => {
      throw new TypeError("Failed to fetch");
    });
    expect((await failure(offline.get("/api/x"))).kind).toBe("offline");

    const slow = client(
      (_url, init) =>
        new Promise((_resolve, reject) => init.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")))),
      20,
    );
    expect((await failure(slow.get("/api/x"))).kind).toBe("timeout");

    const noNetwork = new ApiClient({ initData: () => "x", fetch: vi.fn(), isOnline: () => false });
    expect((await failure(noNetwork.get("/api/x"))).kind).toBe("offline");
  });
});

describe("Submission (Idempotency-Key per submit)", () => {
  it("a double tap while the submit is in flight is one request with one key", async () => {
    let resolve!: (value: string) => void;
    const send = vi.fn((key: string) => new Promise<string>((r) => (resolve = () => r(key))));
    let n = 0;
    const submission = new Submission(send, () => `key-${++n}`);
    const first = submission.submit();
    const second = submission.submit();
    expect(submission.busy).toBe(true);
    resolve("");
    expect(await first).toBe("key-1");
    expect(await second).toBe("key-1");
    expect(send).toHaveBeenCalledTimes(1);
  });

  it("each new submit after an answer gets a fresh key", async () => {
    const keys: string[] = [];
    const submission = new Submission(async (key: string) => keys.push(key));
    await submission.submit();
    await submission.submit();
    expect(keys).toHaveLength(2);
    expect(keys[0]).not.toBe(keys[1]);
    expect(keys[0]).toMatch(/^[\x21-\x7e]{1,128}$/);
  });

  it("a retry after an unknown outcome (timeout, offline, 5xx) reuses the key, so the server replays", async () => {
    const keys: string[] = [];
    const outcomes = [new ApiError("timeout", 0, "timeout", "slow"), new ApiError("server", 502, "http_502", "gw"), null];
    const submission = new Submission(async (key: string) => {
      keys.push(key);
      const outcome = outcomes.shift();
      if (outcome) throw outcome;
      return "ok";
    });
    await expect(submission.submit()).rejects.toThrow("slow");
    await expect(submission.submit()).rejects.toThrow("gw");
    await expect(submission.submit()).resolves.toBe("ok");
    expect(new Set(keys).size).toBe(1);
  });

  it("a refused submit (402) or a changed draft gets a new key", async () => {
    const keys: string[] = [];
    const submission = new Submission(async (key: string) => {
      keys.push(key);
      if (keys.length === 1) throw new ApiError("insufficient_credits", 402, "insufficient_credits", "no");
      if (keys.length === 2) throw new ApiError("offline", 0, "offline", "down");
      return "ok";
    });
    await expect(submission.submit()).rejects.toThrow("no");
    await expect(submission.submit()).rejects.toThrow("down");
    submission.reset();
    await submission.submit();
    expect(new Set(keys).size).toBe(3);
  });
});
