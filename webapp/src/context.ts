/** What every screen needs: the API client, the texts, the signed-in user and navigation. */
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { ApiClient } from "./api";
import type { Language, Texts } from "./i18n";
import type { Model, User } from "./types";

export type Tab = "create" | "history" | "account" | "admin";

/** What even the loading and error screens have: the texts and navigation. */
export interface Shell {
  tx: Texts;
  go(tab: Tab): void;
}

export interface AppState extends Shell {
  api: ApiClient;
  me: User;
  models: Model[];
  setMe(user: User): void;
  refreshMe(): Promise<User>;
  setLanguage(language: Language): void;
}

export const ShellContext = createContext<Shell | null>(null);
export const AppContext = createContext<AppState | null>(null);

export function useShell(): Shell {
  const shell = useContext(ShellContext);
  if (!shell) throw new Error("useShell outside <ShellContext.Provider>");
  return shell;
}

export function useApp(): AppState {
  const state = useContext(AppContext);
  if (!state) throw new Error("useApp outside <AppContext.Provider>");
  return state;
}
