/**
 * The operator's pages in the operator's language: their own catalogues (./i18n), loaded
 * with this chunk, and the words for the keys the admin API answers with (statuses,
 * ledger reasons, stats totals), so no raw key is what the operator reads.
 */
import { useMemo } from "preact/hooks";
import { useApp } from "../context";
import { type Language, textsOf, type TextsOf } from "../i18n";
import { type AdminCatalogue, en } from "./i18n/en";
import { ru } from "./i18n/ru";

const CATALOGUES: Record<Language, AdminCatalogue> = { en, ru };

export type AdminTexts = TextsOf<AdminCatalogue> & {
  /** The words for a key of the API's answers (`status_` + "failed", ...); a key newer than this page shows as itself. */
  label(group: "status" | "moved" | "reason" | "broadcast", key: string): string;
  /** An ISO 8601 time as the operator reads dates; anything unreadable as it came. */
  date(iso: string): string;
};

export function adminTexts(language: Language): AdminTexts {
  const catalogue = CATALOGUES[language];
  const dates = new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle: "short" });
  return {
    ...textsOf(catalogue, language),
    label: (group, key) => {
      const name = `${group}_${key}`;
      return Object.prototype.hasOwnProperty.call(catalogue, name) ? catalogue[name as keyof AdminCatalogue] : key;
    },
    date: (iso) => {
      const time = new Date(iso);
      return Number.isNaN(time.getTime()) ? iso : dates.format(time);
    },
  };
}

export function useAdminTexts(): AdminTexts {
  const { tx } = useApp();
  return useMemo(() => adminTexts(tx.language), [tx.language]);
}
