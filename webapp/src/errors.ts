/** What the user reads, in their language, for each error of CONTRACT §4, and what they can do about it. */
import { ApiError } from "./api";
import type { Texts } from "./i18n";

export type ErrorAction = "buy" | "reopen" | "retry" | "wait" | undefined;

export interface ShownError {
  text: string;
  detail?: string;
  action: ErrorAction;
  retryAfter?: number;
}

export function describeError(error: unknown, tx: Texts, context: "promo" | "default" = "default"): ShownError {
  if (!(error instanceof ApiError)) return { text: tx.t("err_server"), action: "retry" };
  switch (error.kind) {
    case "unauthorized":
      return { text: tx.t("err_unauthorized"), action: "reopen" };
    case "insufficient_credits":
      return { text: tx.t("err_insufficient_credits"), action: "buy" };
    case "rate_limited":
      return error.retryAfter
        ? { text: tx.t("err_rate_limited", { seconds: tx.plural("seconds", error.retryAfter) }), action: "wait", retryAfter: error.retryAfter }
        : { text: tx.t("err_rate_limited_soon"), action: "wait" };
    case "server":
      return { text: tx.t("err_server"), detail: error.requestId && tx.t("request_id", { id: error.requestId }), action: "retry" };
    case "offline":
      return { text: tx.t("err_offline"), action: "retry" };
    case "timeout":
      return { text: tx.t("err_timeout"), action: "retry" };
    case "forbidden":
      return { text: tx.t("err_forbidden"), action: undefined };
    case "user_banned":
      return { text: tx.t("err_user_banned"), action: undefined };
    case "not_found":
      return { text: tx.t(context === "promo" ? "err_promo_not_found" : "err_not_found"), action: undefined };
    case "conflict":
      if (error.code === "already_redeemed") return { text: tx.t("err_already_redeemed"), action: undefined };
      if (error.code === "promo_exhausted") return { text: tx.t("err_promo_exhausted"), action: undefined };
      return { text: tx.t("err_conflict"), detail: error.message, action: undefined };
    case "invalid_request":
      return { text: tx.t("err_invalid_request", { message: error.message }), action: undefined };
  }
}
