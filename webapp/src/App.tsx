/** The shell: loads the user and the models, picks the language, shows the balance, tabs and overlays. */
import { useEffect, useMemo, useState } from "preact/hooks";
import type { FunctionComponent } from "preact";
import { ApiClient, ApiError } from "./api";
import { AppContext, type AppState, ShellContext, type Tab } from "./context";
import { chooseLanguage, type Language, texts } from "./i18n";
import { Account } from "./screens/Account";
import { Create } from "./screens/Create";
import { History, Viewer } from "./screens/History";
import * as telegram from "./telegram";
import type { Generation, Model, User } from "./types";
import { BackAction, ErrorNote } from "./ui";

const api = new ApiClient({ initData: telegram.initData });

export function App() {
  const [me, setMe] = useState<User | null>(null);
  const [models, setModels] = useState<Model[]>([]);
  const [fatal, setFatal] = useState<unknown>(null);
  const [chosen, setChosen] = useState<Language | null>(null);
  const [tab, setTab] = useState<Tab>("create");
  const [viewing, setViewing] = useState<Generation | null>(null);
  const [isAdmin, setIsAdmin] = useState(false);
  const [Admin, setAdmin] = useState<FunctionComponent | null>(null);

  const language = chosen ?? chooseLanguage(me?.language, telegram.languageCode());
  const tx = useMemo(() => texts(language), [language]);
  useEffect(() => {
    document.documentElement.lang = language;
  }, [language]);

  const load = () => {
    setFatal(null);
    const user = api.get<User>("/api/user/me");
    Promise.all([user, api.get<{ models: Model[] }>("/api/generation/models")]).then(
      ([found, answer]) => {
        setMe(found);
        setModels(answer.models);
      },
      setFatal,
    );
    user.then(probeAdmin, () => undefined);
  };
  // The operator's pages exist for whoever the admin API lets in: asking for one's own user
  // costs an admin two item reads (stats would scan whole tables), and everyone else is
  // refused (403) before any read. A 404 too comes only after the admin check passed.
  const probeAdmin = (user: User) =>
    api.get(`/api/admin/users/${user.id}`).then(
      () => setIsAdmin(true),
      (error: unknown) => setIsAdmin(error instanceof ApiError && error.kind === "not_found"),
    );
  useEffect(load, []);

  useEffect(() => {
    if (tab === "admin" && !Admin)
      void import("./admin/Admin").then((module) => setAdmin(() => module.Admin));
  }, [tab]);

  const go = (next: Tab) => {
    setViewing(null);
    setTab(next);
  };

  if (!me) {
    return (
      <ShellContext.Provider value={{ tx, go }}>
        <main class="app loading">
          {fatal ? <ErrorNote error={fatal} /> : <p class="hint">{tx.t("loading")}</p>}
          {fatal && !(fatal instanceof ApiError && fatal.kind === "unauthorized") ? (
            <button type="button" class="link" onClick={load}>
              {tx.t("retry")}
            </button>
          ) : null}
        </main>
      </ShellContext.Provider>
    );
  }

  const state: AppState = {
    api,
    tx,
    me,
    models,
    setMe,
    refreshMe: async () => {
      const user = await api.get<User>("/api/user/me");
      setMe(user);
      return user;
    },
    setLanguage: setChosen,
    go,
  };
  const tabs: Tab[] = isAdmin ? ["create", "history", "account", "admin"] : ["create", "history", "account"];

  return (
    <ShellContext.Provider value={state}>
      <AppContext.Provider value={state}>
        <main class="app">
          <header class="top">
            <h1>{tx.t("app_title")}</h1>
            <p class="balance" aria-label={tx.t("balance")} data-credits={me.credits}>
              {tx.plural("credits", me.credits)}
            </p>
          </header>
          {(tab !== "create" || viewing) && <BackAction onBack={() => (viewing ? setViewing(null) : setTab("create"))} />}
          <nav class="tabs">
            {tabs.map((id) => (
              <button key={id} type="button" data-tab={id} aria-current={tab === id ? "page" : undefined} onClick={() => state.go(id)}>
                {tx.t(`tab_${id}`)}
              </button>
            ))}
          </nav>
          {tab === "create" && <Create onOpen={setViewing} />}
          {tab === "history" && <History onOpen={setViewing} />}
          {tab === "account" && <Account />}
          {tab === "admin" && (Admin ? <Admin /> : <p class="hint">{tx.t("loading")}</p>)}
          {viewing && <Viewer generation={viewing} onClose={() => setViewing(null)} />}
        </main>
      </AppContext.Provider>
    </ShellContext.Provider>
  );
}
