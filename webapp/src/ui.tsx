/** Small shared pieces: the main and back buttons, error notes, the balance. */
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { useShell } from "./context";
import { describeError, type ErrorContext } from "./errors";
import { haptic, hostDrawsButtons, setBackButton, setMainButton } from "./telegram";

interface MainActionProps {
  text: string;
  enabled: boolean;
  loading?: boolean;
  onClick: () => void;
}

/** The screen's primary action: Telegram's main button, or an in-page one outside Telegram. */
export function MainAction({ text, enabled, loading = false, onClick }: MainActionProps) {
  const click = useRef(onClick);
  click.current = onClick;
  useEffect(() => {
    setMainButton({ text, enabled, loading, onClick: () => click.current() });
  }, [text, enabled, loading]);
  useEffect(() => () => setMainButton(null), []);
  if (hostDrawsButtons()) return null;
  return (
    <button class="main-action" type="button" disabled={!enabled || loading} onClick={() => click.current()}>
      {loading ? "…" : text}
    </button>
  );
}

/** Telegram's back button while mounted, or an in-page one outside Telegram. */
export function BackAction({ onBack }: { onBack: () => void }) {
  const { tx } = useShell();
  const back = useRef(onBack);
  back.current = onBack;
  useEffect(() => {
    setBackButton(() => back.current());
    return () => setBackButton(null);
  }, []);
  if (hostDrawsButtons()) return null;
  return (
    <button class="back" type="button" onClick={() => back.current()}>
      ← {tx.t("back")}
    </button>
  );
}

/**
 * Seconds left of a Retry-After, counting down to 0; `key` (the error) restarts it.
 *
 * Computed during render, not set by an effect: the render that first shows an error must
 * already hold the seconds, or the main button is active for a frame and a tap goes through.
 */
export function useCountdown(seconds: number | undefined, key: unknown = seconds): number {
  const since = useRef<{ key: unknown; at: number } | null>(null);
  if (!since.current || since.current.key !== key) since.current = { key, at: Date.now() };
  const started = since.current.at;
  const left = () => Math.max(0, (seconds ?? 0) - Math.floor((Date.now() - started) / 1000));
  const [, tick] = useState(0);
  useEffect(() => {
    if (!seconds) return;
    const timer = setInterval(() => {
      tick((n) => n + 1);
      if (left() === 0) clearInterval(timer);
    }, 250);
    return () => clearInterval(timer);
  }, [seconds, started]);
  return left();
}

/** An error of CONTRACT §4 in the user's language, with what to do about it; a Retry-After counts down. */
export function ErrorNote({ error, context }: { error: unknown; context?: ErrorContext }) {
  const { tx, go } = useShell();
  const left = useCountdown(describeError(error, tx, context).retryAfter, error);
  const shown = describeError(error, tx, context, left);
  useEffect(() => haptic("error"), [error]);
  return (
    <div class="error" role="alert" data-action={shown.action ?? ""}>
      <p>{shown.text}</p>
      {shown.detail && <p class="detail">{shown.detail}</p>}
      {shown.action === "buy" && (
        <button type="button" class="link" onClick={() => go("account")}>
          {tx.t("buy_credits")}
        </button>
      )}
    </div>
  );
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section class="card">
      <h2>{title}</h2>
      {children}
    </section>
  );
}
