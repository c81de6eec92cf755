/**
 * The operator's credit change (`POST /api/admin/users/{id}/credits`), sent with an
 * `Idempotency-Key` so that tapping again after a lost answer never changes a balance twice.
 */
import { type ApiClient, Submission } from "../api";
import type { User } from "../types";

export interface CreditChange {
  userId: string;
  amount: number;
  reason: string;
}

/**
 * One key per intended change, through the same `Submission` as the Create screen: a tap
 * while it is in flight joins it; a tap again after an unknown outcome (timeout, offline,
 * 5xx) with the same user, amount and reason reuses the key, so the server replays it;
 * after an answer, or with other values, the next tap is a new change with a new key.
 */
export class CreditChanges {
  private current: CreditChange | undefined;
  private readonly submission: Submission<User>;

  constructor(api: ApiClient, makeKey?: () => string) {
    this.submission = new Submission<User>((key) => {
      const { userId, amount, reason } = this.current as CreditChange;
      return api.post<User>(`/api/admin/users/${encodeURIComponent(userId)}/credits`, { amount, reason }, key);
    }, makeKey);
  }

  send(change: CreditChange): Promise<User> {
    if (this.submission.busy) return this.submission.submit();
    const previous = this.current;
    const same =
      previous !== undefined &&
      previous.userId === change.userId &&
      previous.amount === change.amount &&
      previous.reason === change.reason;
    if (!same) this.submission.reset();
    this.current = change;
    return this.submission.submit();
  }
}
