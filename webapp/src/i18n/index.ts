/** Texts in the user's language (CONTRACT §8): one catalogue per language, plurals by Intl.PluralRules. */
import { type Catalogue, en, type PluralForms } from "./en";
import { ru } from "./ru";

export type { PluralForms };
export type Language = "en" | "ru";
export const LANGUAGES: { id: Language; name: string }[] = [
  { id: "ru", name: "Русский" },
  { id: "en", name: "English" },
];
const CATALOGUES: Record<Language, Catalogue> = { en, ru };

/** The keys of a catalogue whose values are plain texts; the others hold plural forms. */
type StringKey<C> = { [K in keyof C]: C[K] extends string ? K : never }[keyof C];
export type TextKey = StringKey<Catalogue>;
export type Params = Record<string, string | number>;

/** `ru`, `ru-RU`, ... give `ru`; anything unsupported gives undefined. */
export function supported(code: string | null | undefined): Language | undefined {
  const base = code?.toLowerCase().split(/[-_]/)[0];
  return base === "ru" || base === "en" ? base : undefined;
}

/**
 * §8: the saved language, else Telegram's language_code, else English.
 *
 * `saved` is `/api/user/me`'s `language`, which the server has already
 * resolved (choice, else Telegram's language, else DEFAULT_LANGUAGE), so once
 * `/me` answers it decides. Before that (the loading screen, an error loading
 * `/me`) only Telegram's language_code is known: the page cannot learn
 * DEFAULT_LANGUAGE without asking the server, so it shows English.
 */
export function chooseLanguage(saved: string | null | undefined, telegramCode: string | undefined): Language {
  return supported(saved) ?? supported(telegramCode) ?? "en";
}

function fill(template: string, params: Params): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

/** What a screen reads texts through: `t` for a plain text, `plural` for one that agrees with `{n}`. */
export interface TextsOf<C> {
  language: Language;
  t(key: StringKey<C>, params?: Params): string;
  /** The form of `key` that agrees with `n`, which fills `{n}` (written the language's way) beside `params`. */
  plural(key: Exclude<keyof C, StringKey<C>>, n: number, params?: Params): string;
}
export type Texts = TextsOf<Catalogue>;

/**
 * Texts of any catalogue of this shape: the main one here, and the operator's pages'
 * own (src/admin/texts.ts), which lives in their lazily loaded chunk.
 */
export function textsOf<C extends Record<string, string | PluralForms>>(catalogue: C, language: Language): TextsOf<C> {
  const rules = new Intl.PluralRules(language);
  return {
    language,
    t: (key, params = {}) => fill(catalogue[key] as string, params),
    plural: (key, n, params = {}) => {
      const forms = catalogue[key] as PluralForms;
      return fill(forms[rules.select(n)] ?? forms.other, { ...params, n: n.toLocaleString(language) });
    },
  };
}

export function texts(language: Language): Texts {
  return textsOf(CATALOGUES[language], language);
}
