import { describe, expect, it } from "vitest";
import { chooseLanguage, texts } from "../src/i18n";
import { en } from "../src/i18n/en";
import { ru } from "../src/i18n/ru";

describe("plural forms (CONTRACT §8)", () => {
  it.each([
    [1, "1 кредит"],
    [2, "2 кредита"],
    [5, "5 кредитов"],
    [11, "11 кредитов"],
    [21, "21 кредит"],
    [22, "22 кредита"],
    [111, "111 кредитов"],
  ])("ru: %i", (n, expected) => {
    expect(texts("ru").plural("credits", n)).toBe(expected);
  });

  it.each([
    [1, "1 credit"],
    [2, "2 credits"],
    [0, "0 credits"],
  ])("en: %i", (n, expected) => {
    expect(texts("en").plural("credits", n)).toBe(expected);
  });

  it.each([
    ["ru", 1, "До 1 картинки JPEG, PNG или WebP."],
    ["ru", 3, "До 3 картинок JPEG, PNG или WebP."],
    ["ru", 5, "До 5 картинок JPEG, PNG или WebP."],
    ["ru", 21, "До 21 картинки JPEG, PNG или WebP."],
    ["en", 1, "One JPEG, PNG or WebP picture."],
    ["en", 3, "Up to 3 JPEG, PNG or WebP pictures."],
  ] as const)("%s: the photos hint for a model that takes %i", (language, n, expected) => {
    expect(texts(language).plural("photos_hint", n)).toBe(expected);
  });

  it("fills parameters", () => {
    const seconds = texts("ru").plural("seconds", 21);
    expect(texts("ru").t("err_rate_limited", { seconds })).toBe("Слишком много запросов. Повторите через 21 секунду.");
    expect(texts("ru").t("server_said", { message: "{x}" })).toBe("Ответ сервера: {x}");
  });
});

describe("catalogues", () => {
  it("ru and en have the same keys and the same parameters", () => {
    expect(Object.keys(ru).sort()).toEqual(Object.keys(en).sort());
    const params = (value: unknown) => [...JSON.stringify(value).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect([key, ...new Set(params(ru[key]))]).toEqual([key, ...new Set(params(en[key]))]);
    }
  });
});

describe("language choice (CONTRACT §8)", () => {
  it("/me's language first, then Telegram's language_code, then English", () => {
    expect(chooseLanguage("en", "ru")).toBe("en");
    // /me answers with the language the server resolved, DEFAULT_LANGUAGE included: it wins.
    expect(chooseLanguage("ru", "de")).toBe("ru");
    expect(chooseLanguage("ru", undefined)).toBe("ru");
    expect(chooseLanguage(null, "ru-RU")).toBe("ru");
    expect(chooseLanguage(undefined, "ru")).toBe("ru");
    expect(chooseLanguage(undefined, "de")).toBe("en");
    expect(chooseLanguage("fr", undefined)).toBe("en");
  });
});
