/** Texts in the user's language (CONTRACT §8): one catalogue per language, plurals by Intl.PluralRules. */
import { type Catalogue, en, type PluralForms } from "./en";
import { ru } from "./ru";

export type Language = "en" | "ru";
export const LANGUAGES: { id: Language; name: string }[] = [
  { id: "ru", name: "Русский" },
  { id: "en", name: "English" },
];
const CATALOGUES: Record<Language, Catalogue> = { en, ru };

export type TextKey = { [K in keyof Catalogue]: Catalogue[K] extends string ? K : never }[keyof Catalogue];
type PluralKey = Exclude<keyof Catalogue, TextKey>;
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

export interface Texts {
  language: Language;
  t(key: TextKey, params?: Params): string;
  plural(key: PluralKey, n: number): string;
}

export function texts(language: Language): Texts {
  const catalogue = CATALOGUES[language];
  const rules = new Intl.PluralRules(language);
  return {
    language,
    t: (key, params = {}) => fill(catalogue[key] as string, params),
    plural: (key, n) => {
      const forms = catalogue[key] as PluralForms;
      return fill(forms[rules.select(n)] ?? forms.other, { n: n.toLocaleString(language) });
    },
  };
}
