/** What every screen needs: the API client, the texts, the signed-in user and navigation. */
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { ApiClient } from "./api";
import type { Language, Texts } from "./i18n";
import type { Model, User } from "./types";

export type Tab = "create" | "history" | "account" | "admin";

export interface AppState {
  api: ApiClient;
  tx: Texts;
  me: User;
  models: Model[];
  setMe(user: User): void;
  refreshMe(): Promise<User>;
  setLanguage(language: Language): void;
  go(tab: Tab): void;
}

export const AppContext = createContext<AppState | null>(null);

export function useApp(): AppState {
  const state = useContext(AppContext);
  if (!state) throw new Error("useApp outside <AppContext.Provider>");
  return state;
}
