/** Stars payments from the Mini App (CONTRACT §5 `POST /api/payments/invoice`, then `openInvoice`). */
import type { User } from "./types";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * After `paid` the credits come with Telegram's successful_payment update to the bot,
 * which may arrive later than the Mini App hears "paid": ask until the balance grows (a
 * spend meanwhile, in a generation or another window, is not the payment).
 * True once it has; false after `tries` (about half a minute), when the page says the
 * credits are on their way instead of going quiet.
 */
export async function awaitCredit(
  refresh: () => Promise<User>,
  before: number,
  { tries = 10, wait = sleep }: { tries?: number; wait?: (ms: number) => Promise<void> } = {},
): Promise<boolean> {
  for (let i = 0; i < tries; i += 1) {
    const user = await refresh().catch(() => null);
    if (user && user.credits > before) return true;
    if (i < tries - 1) await wait(1000 + i * 500);
  }
  return false;
}
