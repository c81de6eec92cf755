/**
 * The one module that talks to Telegram (window.Telegram.WebApp, from telegram-web-app.js).
 *
 * Everything else imports these functions, never the global, so the app also
 * runs in an ordinary browser: when no Telegram client hosts the page (no
 * native webview proxy, no parent frame), the main and back buttons are drawn
 * by the app itself (see `hostDrawsButtons`).
 */
import type { WebApp } from "telegram-web-app";

type InvoiceStatus = "paid" | "cancelled" | "failed" | "pending";

function webApp(): WebApp | undefined {
  return typeof window === "undefined" ? undefined : window.Telegram?.WebApp;
}

/** initData exactly as Telegram gave it; from the URL fragment if the script did not load. */
export function initData(): string {
  const fromScript = webApp()?.initData;
  if (fromScript) return fromScript;
  const hash = new URLSearchParams(location.hash.slice(1));
  return hash.get("tgWebAppData") ?? "";
}

/** The user's Telegram language code (unsigned: only a hint for the first paint). */
export function languageCode(): string | undefined {
  const user = webApp()?.initDataUnsafe?.user;
  if (user?.language_code) return user.language_code;
  try {
    const raw = new URLSearchParams(initData()).get("user");
    return raw ? (JSON.parse(raw) as { language_code?: string }).language_code : undefined;
  } catch {
    return undefined;
  }
}

/** True when a Telegram client draws the main and back buttons for us. */
export function hostDrawsButtons(): boolean {
  const w = window as unknown as { TelegramWebviewProxy?: unknown };
  return Boolean(webApp()) && (w.TelegramWebviewProxy !== undefined || window.parent !== window);
}

function applyTheme(): void {
  const app = webApp();
  const root = document.documentElement;
  const scheme =
    app?.colorScheme ?? (matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light");
  root.dataset.scheme = scheme;
  // telegram-web-app.js already sets --tg-theme-* on <html>; set them again for stand-ins.
  for (const [name, value] of Object.entries(app?.themeParams ?? {})) {
    if (typeof value === "string") root.style.setProperty(`--tg-theme-${name.replace(/_/g, "-")}`, value);
  }
}

function applyViewport(): void {
  const height = webApp()?.viewportStableHeight;
  if (height) document.documentElement.style.setProperty("--app-height", `${height}px`);
}

/** Tell Telegram the page is ready, take the full height, follow theme and viewport changes. */
export function start(): void {
  const app = webApp();
  applyTheme();
  applyViewport();
  if (!app) return;
  app.onEvent("themeChanged", applyTheme);
  app.onEvent("viewportChanged", applyViewport);
  app.ready();
  app.expand();
}

export interface MainButtonState {
  text: string;
  enabled: boolean;
  loading: boolean;
  onClick: () => void;
}

let mainClick: (() => void) | undefined;

/** Show Telegram's main button for the screen's primary action, or hide it (null). */
export function setMainButton(state: MainButtonState | null): void {
  const button = webApp()?.MainButton;
  if (!button) return;
  if (mainClick) button.offClick(mainClick);
  mainClick = undefined;
  if (!state) {
    button.hideProgress();
    button.hide();
    return;
  }
  mainClick = state.onClick;
  button.onClick(mainClick);
  button.setParams({ text: state.text, is_active: state.enabled && !state.loading, is_visible: true });
  if (state.loading) button.showProgress(false);
  else button.hideProgress();
}

let backClick: (() => void) | undefined;

/** Show Telegram's back button with what it does, or hide it (null). */
export function setBackButton(onBack: (() => void) | null): void {
  const button = webApp()?.BackButton;
  if (!button) return;
  if (backClick) button.offClick(backClick);
  backClick = onBack ?? undefined;
  if (backClick) {
    button.onClick(backClick);
    button.show();
  } else {
    button.hide();
  }
}

export function haptic(kind: "tap" | "success" | "error" | "warning"): void {
  const feedback = webApp()?.HapticFeedback;
  if (!feedback) return;
  try {
    if (kind === "tap") feedback.impactOccurred("light");
    else feedback.notificationOccurred(kind);
  } catch {
    // Older clients lack haptics; nothing to do.
  }
}

/** Open a Stars invoice; resolves with Telegram's status once the sheet closes. */
export function openInvoice(link: string): Promise<InvoiceStatus> {
  const app = webApp();
  if (!app?.openInvoice) return Promise.resolve("failed");
  return new Promise((resolve) => app.openInvoice(link, resolve));
}
