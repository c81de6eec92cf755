import { describe, expect, it, vi } from "vitest";
import { texts } from "../src/i18n";
import { awaitCredit } from "../src/payments";
import type { User } from "../src/types";

const user = (credits: number) => ({ id: 1, first_name: "T", credits, active_generations: 0, banned: false }) as User;
const noWait = async () => undefined;

describe("after 'paid', the page waits for the credits and says so when they are late", () => {
  it("is done as soon as the balance moves", async () => {
    const refresh = vi.fn().mockResolvedValueOnce(user(10)).mockResolvedValueOnce(user(60));
    expect(await awaitCredit(refresh, 10, { wait: noWait })).toBe(true);
    expect(refresh).toHaveBeenCalledTimes(2);
  });

  it("is not fooled by a spend meanwhile: only a balance that grows is the payment", async () => {
    const refresh = vi.fn().mockResolvedValueOnce(user(9)).mockResolvedValueOnce(user(59));
    expect(await awaitCredit(refresh, 10, { wait: noWait })).toBe(true);
    expect(refresh).toHaveBeenCalledTimes(2); // 9 (a generation's charge) was not taken for the credits
  });

  it("tells the caller when the credits have not arrived after every try, a failed refresh included", async () => {
    const refresh = vi.fn().mockRejectedValueOnce(new Error("offline")).mockResolvedValue(user(10));
    const waits: number[] = [];
    expect(await awaitCredit(refresh, 10, { tries: 4, wait: async (ms) => void waits.push(ms) })).toBe(false);
    expect(refresh).toHaveBeenCalledTimes(4);
    expect(waits).toEqual([1000, 1500, 2000]); // no pointless wait after the last try
  });

  it.each(["en", "ru"] as const)("%s: a failed or late payment says what to do next", (language) => {
    const tx = texts(language);
    for (const key of ["invoice_failed", "payment_crediting"] as const) expect(tx.t(key)).toContain("/paysupport");
    expect(tx.t("payment_crediting")).not.toBe(tx.t("paid"));
  });
});
