/**
 * The Mini App says things with the bot's words (chalicelib/locales/*.ftl), so a user who
 * uses both reads one product: the prompt is «описание» / "description", the aspect ratio
 * «Формат» / "Aspect ratio", and a generation's states are the bot's /history words.
 */
import { describe, expect, it } from "vitest";
import botEn from "../../chalicelib/locales/en.ftl?raw";
import botRu from "../../chalicelib/locales/ru.ftl?raw";
import { en } from "../src/i18n/en";
import { ru } from "../src/i18n/ru";

const BOT = { en: botEn, ru: botRu };
const MINI_APP = { en, ru } as const;

/** A one-line message of the bot's catalogue. */
function message(ftl: string, id: string): string {
  const line = ftl.match(new RegExp(`^${id} = (.+)$`, "m"));
  if (!line) throw new Error(`the bot's catalogue has no one-line message ${id}`);
  return line[1];
}

/** The variants of a select message, `[key] text` each. */
function variants(ftl: string, id: string): Record<string, string> {
  const block = ftl.match(new RegExp(`^${id} = [^\\n]*\\n((?:\\s+.*\\n)+)`, "m"));
  if (!block) throw new Error(`the bot's catalogue has no message ${id}`);
  return Object.fromEntries([...block[1].matchAll(/\*?\[(\w+)\] (.+)/g)].map((m) => [m[1], m[2].trim()]));
}

function strings(catalogue: Record<string, unknown>): [string, string][] {
  return Object.entries(catalogue).filter((entry): entry is [string, string] => typeof entry[1] === "string");
}

describe.each(["en", "ru"] as const)("%s: the Mini App uses the bot's words", (language) => {
  const bot = BOT[language];
  const app = MINI_APP[language];

  it("for the aspect ratio", () => {
    const word = message(bot, "settings-button-aspect-ratio").split(":")[0]; // "Формат: { $aspect_ratio }"
    expect(app.aspect_label).toBe(word);
  });

  it("for a generation's states, as /history names them", () => {
    const states = variants(bot, "generation-status");
    expect(Object.keys(states)).toEqual(["pending", "processing", "completed", "failed", "cancelled"]);
    for (const state of ["pending", "processing", "completed", "cancelled"] as const) {
      expect(app[`status_${state}`].replace(/[….].*$/, "")).toBe(states[state]);
    }
  });

  it("for the prompt", () => {
    // "Описание слишком длинное: ..." / "The description is too long: ..."
    const word = { en: "description", ru: "описание" }[language];
    expect(message(bot, "refusal-prompt-too-long").toLowerCase()).toContain(word);
    expect(app.prompt_required.toLowerCase()).toContain(word);
    expect(app.err_invalid_generation.toLowerCase()).toContain(word);
  });
});

describe("no other word for the prompt or the aspect ratio", () => {
  it("en: 'prompt' only where the bot says the very same sentence", () => {
    for (const [key, text] of strings(en)) {
      if (/\bprompt\b/i.test(text)) expect(botEn, key).toContain(text);
    }
  });

  it("ru: «запрос» only for a request to the server, never the prompt; no «соотношение сторон»", () => {
    const requests = ["err_rate_limited", "err_rate_limited_soon", "request_id"];
    for (const [key, text] of strings(ru)) {
      expect(text, key).not.toMatch(/соотношени/i);
      if (!requests.includes(key)) expect(text, key).not.toMatch(/запрос/i);
    }
  });
});
