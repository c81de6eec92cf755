import { describe, expect, it } from "vitest";
import { FAILURE_REASONS, failureText } from "../src/failures";
import { texts } from "../src/i18n";

// The backend's stored texts (chalicelib/model.py FailureReason) and what each language reads.
const CASES: [error: string, en: string, ru: string][] = [
  ["Timed out.", "Failed: it took too long. The credits were returned.", "Не получилось: это заняло слишком много времени. Кредиты возвращены."],
  ["Timed out before it could run.", "Failed: it took too long. The credits were returned.", "Не получилось: это заняло слишком много времени. Кредиты возвращены."],
  ["Failed after repeated attempts.", "Failed: the image service kept failing. The credits were returned.", "Не получилось: сервис изображений раз за разом давал сбой. Кредиты возвращены."],
  [
    "the image service rejected this prompt or its images.",
    "Failed: the image service rejected this prompt or its images. The credits were returned.",
    "Не получилось: сервис изображений отклонил это описание или картинки. Кредиты возвращены.",
  ],
  [
    "the image service is unavailable right now.",
    "Failed: the image service is unavailable right now. The credits were returned.",
    "Не получилось: сервис изображений сейчас недоступен. Кредиты возвращены.",
  ],
  [
    "the image service could not make it.",
    "Failed: the image service could not make it. The credits were returned.",
    "Не получилось: сервис изображений не смог её нарисовать. Кредиты возвращены.",
  ],
];
const GENERIC = { en: "The picture could not be made. The credits were returned.", ru: "Картинка не получилась. Кредиты возвращены." };

describe("a failed generation's reason in the user's language (CONTRACT §8, §9)", () => {
  it.each(CASES)("%s", (error, en, ru) => {
    expect(failureText(error, texts("en"))).toBe(en);
    expect(failureText(error, texts("ru"))).toBe(ru);
  });

  it("covers every text of the mapping, and nothing else", () => {
    expect([...FAILURE_REASONS.keys()].sort()).toEqual(CASES.map(([error]) => error).sort());
  });

  it("says a generic sentence for an unknown or missing reason, never the stored text", () => {
    for (const error of ["The provider refused the prompt.", "", null, undefined, "constructor", "Timed out"]) {
      expect(failureText(error, texts("en"))).toBe(GENERIC.en);
      expect(failureText(error, texts("ru"))).toBe(GENERIC.ru);
    }
  });

  it("never shows English to a Russian user, nor a doubled full stop", () => {
    for (const error of [...FAILURE_REASONS.keys(), "Something new."]) {
      const ru = failureText(error, texts("ru"));
      expect(ru).not.toMatch(/[A-Za-z]/);
      for (const shown of [ru, failureText(error, texts("en"))]) {
        expect(shown).not.toMatch(/\.\s*\./);
        expect(shown).toMatch(/^\p{Lu}.*\.$/u);
      }
    }
  });
});
