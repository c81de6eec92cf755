/**
 * What the user reads, in their language, for each error of CONTRACT §4, and what they can do about it.
 *
 * The main text always comes from the user's catalogue: the server's `message`
 * is English (§8). It is shown only as a secondary, labelled detail, and only
 * for `invalid_request` and `conflict`, where it says what the code cannot
 * (which field was refused, which state conflicts: the balance an operator's
 * debit would overdraw, the promo code that already exists) and no text of
 * ours could guess it.
 */
import { ApiError } from "./api";
import type { TextKey, Texts } from "./i18n";

export type ErrorAction = "buy" | "reopen" | "retry" | "wait" | undefined;

/** Where the error happened, when that changes the advice. */
export type ErrorContext = "default" | "create" | "promo";

export interface ShownError {
  text: string;
  detail?: string;
  action: ErrorAction;
  retryAfter?: number;
}

/** A mistake the page catches before calling the API (an empty prompt, an edit without a photo). */
export class InputError extends Error {
  constructor(readonly key: TextKey) {
    super(key);
    this.name = "InputError";
  }
}

/**
 * `secondsLeft` is what remains of `Retry-After` (the note counts it down);
 * at 0, or without the header, the "try again now" text is shown.
 */
export function describeError(
  error: unknown,
  tx: Texts,
  context: ErrorContext = "default",
  secondsLeft?: number,
): ShownError {
  if (error instanceof InputError) return { text: tx.t(error.key), action: undefined };
  if (!(error instanceof ApiError)) return { text: tx.t("err_server"), action: "retry" };
  const left = secondsLeft ?? error.retryAfter;
  const wait = (withSeconds: TextKey, soon: TextKey): ShownError => ({
    text: left ? tx.t(withSeconds, { seconds: tx.plural("seconds", left) }) : tx.t(soon),
    action: "wait",
    retryAfter: error.retryAfter,
  });
  const requestId = error.requestId ? tx.t("request_id", { id: error.requestId }) : undefined;
  const serverSaid = error.message ? tx.t("server_said", { message: error.message }) : undefined;
  switch (error.kind) {
    case "invalid_request":
      return {
        text: tx.t(context === "create" ? "err_invalid_generation" : context === "promo" ? "err_invalid_promo" : "err_invalid_request"),
        detail: serverSaid,
        action: undefined,
      };
    case "too_large":
      return { text: tx.t("err_too_large"), action: undefined };
    case "unauthorized":
      return { text: tx.t("err_unauthorized"), action: "reopen" };
    case "insufficient_credits":
      return { text: tx.t("err_insufficient_credits"), action: "buy" };
    case "forbidden":
      return { text: tx.t("err_forbidden"), action: undefined };
    case "user_banned":
      return { text: tx.t("err_user_banned"), action: undefined };
    case "not_found":
      return { text: tx.t(context === "promo" ? "err_promo_not_found" : "err_not_found"), action: undefined };
    case "not_cancellable":
      return { text: tx.t("err_not_cancellable"), action: undefined };
    case "conflict":
      return { text: tx.t("err_conflict"), detail: serverSaid, action: "retry" };
    case "already_redeemed":
      return { text: tx.t("err_already_redeemed"), action: undefined };
    case "promo_exhausted":
      return { text: tx.t("err_promo_exhausted"), action: undefined };
    case "idempotency_key_reused":
      return { text: tx.t("err_idempotency_key_reused"), action: "retry" };
    case "rate_limited":
      return wait("err_rate_limited", "err_rate_limited_soon");
    case "too_many_active":
      return wait("err_too_many_active", "err_too_many_active_soon");
    case "unavailable":
      return wait("err_unavailable", "err_unavailable_soon");
    case "server":
      return { text: tx.t("err_server"), detail: requestId, action: "retry" };
    case "timeout":
      return { text: tx.t("err_timeout"), detail: requestId, action: "retry" };
    case "offline":
      return { text: tx.t("err_offline"), action: "retry" };
  }
}
