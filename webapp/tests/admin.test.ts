import { describe, expect, it } from "vitest";
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
