/**
 * Why a generation failed, as the user reads it in their language (CONTRACT §8, §9).
 *
 * A failed generation's `error` (CONTRACT §5) is one of the short English texts
 * the backend stores, spelled once in `chalicelib/model.py` (`FailureReason`);
 * `tests/unit/test_failure_reasons.py` checks that each of them is a key here.
 * Each has its own text in the catalogues; any other text, or none, gets a
 * generic sentence, so the stored English is never what the user reads.
 */
import type { TextKey, Texts } from "./i18n";

/** The stored `error` text -> the catalogue key of its reason (a phrase that fits `status_failed`). */
export const FAILURE_REASONS: ReadonlyMap<string, TextKey> = new Map<string, TextKey>([
  ["Timed out.", "failure_timed_out"],
  ["Timed out before it could run.", "failure_timed_out"],
  ["Failed after repeated attempts.", "failure_retries"],
  ["the image service rejected this prompt or its images.", "failure_rejected"],
  ["the image service is unavailable right now.", "failure_unavailable"],
  ["the image service could not make it.", "failure_provider"],
]);

/** The whole sentence for a failed generation: why (when known), and that the credits are back. */
export function failureText(error: string | null | undefined, tx: Texts): string {
  const reason = error ? FAILURE_REASONS.get(error) : undefined;
  return reason ? tx.t("status_failed", { reason: tx.t(reason) }) : tx.t("status_failed_unknown");
}
