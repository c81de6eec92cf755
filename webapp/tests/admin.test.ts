import { describe, expect, it, vi } from "vitest";
import { ApiClient, ApiError } from "../src/api";
import { CreditChanges } from "../src/admin/credits";
import { en } from "../src/admin/i18n/en";
import { ru } from "../src/admin/i18n/ru";
import { adminTexts } from "../src/admin/texts";

// What the admin API answers with (chalicelib/model.py GenerationStatus, LedgerReason,
// queries.stats' totals; openapi.yaml Broadcast.status): each has words in both languages.
const KEYS = {
  status: ["pending", "processing", "completed", "failed", "cancelled"],
  moved: ["granted", "removed", "spent", "refunded", "purchased", "welcome", "promo", "referral"],
  reason: ["welcome", "generation", "refund", "admin", "purchase", "purchase_refund", "promo", "referral"],
  broadcast: ["queued", "sending", "done", "cancelled"],
} as const;

describe("the operator's pages in the operator's language", () => {
  it("ru and en have the same keys and the same parameters", () => {
    expect(Object.keys(ru).sort()).toEqual(Object.keys(en).sort());
    const params = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect([key, ...params(ru[key])]).toEqual([key, ...params(en[key])]);
    }
  });

  it.each(Object.entries(KEYS))("every %s key of the API has its own words, never the raw key", (group, keys) => {
    for (const language of ["en", "ru"] as const) {
      const ax = adminTexts(language);
      for (const key of keys) {
        const label = ax.label(group as keyof typeof KEYS, key);
        expect(label, `${language} ${group} ${key}`).not.toBe(key);
        if (language === "ru") expect(label.replace("Stars", "")).not.toMatch(/[A-Za-z]/); // Telegram Stars keep their name
      }
    }
  });

  it("shows a key newer than the page as itself, and not an inherited property", () => {
    expect(adminTexts("ru").label("reason", "bonus_2027")).toBe("bonus_2027");
    expect(adminTexts("en").label("status", "constructor")).toBe("constructor");
  });

  it("says the operator's Russian without English labels or stilted counts", () => {
    const ax = adminTexts("ru");
    expect(ax.t("charge_id")).toMatch(/^Код платежа/);
    expect(ax.t("uses", { uses: 3, max_uses: 10 })).toBe("Активаций: 3 из 10");
    expect(ax.t("progress", { status: ax.label("broadcast", "sending"), sent: 1, total: 5, failed: 0, blocked: 0 })).toBe(
      "Отправляется: отправлено 1 из 5, ошибок 0, заблокировали 0",
    );
    for (const key of ["field_id", "field_name", "field_active", "field_banned", "code_credits"] as const) {
      expect(ax.t(key)).not.toMatch(/^(id|name|active|banned|credits)$/);
    }
  });

  it("writes dates the language's way, and leaves an unreadable one as it came", () => {
    expect(adminTexts("ru").date("2026-12-02T10:30:00Z")).toMatch(/2026/);
    expect(adminTexts("ru").date("2026-12-02T10:30:00Z")).not.toContain("T10");
    expect(adminTexts("en").date("soon")).toBe("soon");
  });
});

describe("the operator's credit change sends one Idempotency-Key per intended change", () => {
  type Sent = { url: string; key: string | undefined; body: unknown };

  /** A client whose server answers with `answers` in turn (a status, or a network failure). */
  function server(answers: (number | "offline")[]) {
    const sent: Sent[] = [];
    const fetchImpl = vi.fn(async (url: string, init: RequestInit) => {
      const headers = init.headers as Record<string, string>;
      sent.push({ url, key: headers["Idempotency-Key"], body: JSON.parse(String(init.body)) });
      const answer = answers.shift() ?? 200;
      if (answer === "offline") throw new TypeError("Failed to fetch");
      const body = answer === 200 ? { id: 7, credits: 15 } : { error: { code: answer === 503 ? "temporarily_unavailable" : "conflict", message: "m" } };
      return new Response(JSON.stringify(body), { status: answer, headers: { "Content-Type": "application/json", "Retry-After": "2" } });
    });
    const api = new ApiClient({ initData: () => "auth", fetch: fetchImpl as unknown as typeof fetch, isOnline: () => true });
    let n = 0;
    return { sent, changes: new CreditChanges(api, () => `key-${++n}`) };
  }

  const grant = { userId: "7", amount: 5, reason: "goodwill" };

  it("keeps the key when the operator taps again after a lost answer, and takes a new one after the success", async () => {
    const { sent, changes } = server([503, "offline", 200, 200]);
    await expect(changes.send(grant)).rejects.toBeInstanceOf(ApiError);
    await expect(changes.send({ ...grant })).rejects.toBeInstanceOf(ApiError);
    await expect(changes.send({ ...grant })).resolves.toEqual({ id: 7, credits: 15 });
    await changes.send({ ...grant }); // the same values again, after a success: a second, deliberate grant

    expect(sent.map((s) => s.key)).toEqual(["key-1", "key-1", "key-1", "key-2"]);
    expect(sent[0]).toEqual({ url: "/api/admin/users/7/credits", key: "key-1", body: { amount: 5, reason: "goodwill" } });
  });

  it("takes a new key when the amount, the reason or the user changes after a lost answer", async () => {
    const { sent, changes } = server([503, 503, 503, 503]);
    for (const change of [grant, { ...grant, amount: 6 }, { ...grant, amount: 6, reason: "other" }, { ...grant, amount: 6, reason: "other", userId: "8" }]) {
      await expect(changes.send(change)).rejects.toBeInstanceOf(ApiError);
    }
    expect(sent.map((s) => s.key)).toEqual(["key-1", "key-2", "key-3", "key-4"]);
    expect(sent[3].url).toBe("/api/admin/users/8/credits");
  });

  it("a tap while the change is in flight joins it: one request", async () => {
    const { sent, changes } = server([200]);
    const [first, second] = [changes.send(grant), changes.send({ ...grant })];
    await expect(first).resolves.toEqual({ id: 7, credits: 15 });
    await expect(second).resolves.toEqual({ id: 7, credits: 15 });
    expect(sent).toHaveLength(1);
  });

  it("after a refusal (409: nothing was recorded) the next tap is a new request", async () => {
    const { sent, changes } = server([409, 200]);
    await expect(changes.send({ ...grant, amount: -50 })).rejects.toMatchObject({ kind: "conflict" });
    await changes.send({ ...grant, amount: -50 });
    expect(sent.map((s) => s.key)).toEqual(["key-1", "key-2"]);
  });
});
