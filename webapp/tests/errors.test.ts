import { describe, expect, it } from "vitest";
import { ApiClient, ApiError } from "../src/api";
import { describeError, type ErrorContext, InputError } from "../src/errors";
import { texts } from "../src/i18n";

/** The ApiError the client makes of this answer, as the screens get it. */
async function answered(status: number, code: string | null, headers: Record<string, string> = {}): Promise<ApiError> {
  const body = code === null ? "<html>gateway</html>" : JSON.stringify({ error: { code, message: "An English message." } });
  const api = new ApiClient({
    initData: () => "x",
    fetch: (async () => new Response(body, { status, headers: { "Content-Type": "application/json", ...headers } })) as typeof fetch,
    isOnline: () => true,
  });
  try {
    await api.get("/api/x");
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error("the call did not fail");
}

type Case = [status: number, code: string | null, headers: Record<string, string>, context: ErrorContext, en: string, ru: string];

// Every code of CONTRACT §4 and chalicelib/errors.py, and API Gateway's 413 and 504 (infra/template.py).
const CASES: Case[] = [
  [400, "invalid_request", {}, "default", "Some of what you entered was not accepted. Check it and try again.", "Часть введённого не принята. Проверьте данные и попробуйте снова."],
  [400, "invalid_request", {}, "create", "This picture could not be started. Check the description, the model, the aspect ratio and the photos, then try again.", "Эту картинку не удалось заказать. Проверьте описание, модель, формат и фото и попробуйте снова."],
  [400, "invalid_request", {}, "promo", "This is not a valid promo code. Check how it is written and try again.", "Это не промокод. Проверьте, как он написан, и попробуйте снова."],
  [413, "invalid_request", {}, "create", "That was too large to send. Shorten the description or use a smaller photo, then try again.", "Слишком много данных для отправки. Сократите описание или возьмите фото поменьше и попробуйте снова."],
  [401, "unauthorized", {}, "default", "Your session has expired. Close the app and open it again from the bot.", "Сессия истекла. Закройте приложение и откройте его снова из бота."],
  [402, "insufficient_credits", {}, "create", "Not enough credits for this picture. Buy credits or choose a cheaper model.", "Не хватает кредитов на эту картинку. Купите кредиты или выберите модель дешевле."],
  [403, "forbidden", {}, "default", "Only the operator can do this. If you should have access, ask for your Telegram id to be added to the operators.", "Это может только оператор. Если вам нужен доступ, попросите добавить ваш Telegram id в операторы."],
  [403, "user_banned", {}, "create", "Your account is blocked, so this cannot be done. If you think it is a mistake, send /paysupport to the bot.", "Ваш аккаунт заблокирован, поэтому это недоступно. Если это ошибка, отправьте боту /paysupport."],
  [404, "not_found", {}, "default", "This was not found: it may have been removed. Go back and try again.", "Не найдено: возможно, это уже удалено. Вернитесь назад и попробуйте снова."],
  [404, "not_found", {}, "promo", "No such promo code, or it has expired. Check how it is written.", "Такого промокода нет, или срок его действия истёк. Проверьте, как он написан."],
  [409, "not_cancellable", {}, "default", "This picture has already started, so it can no longer be cancelled. Wait for it to finish.", "Картинка уже рисуется, отменить её нельзя. Дождитесь, пока она будет готова."],
  [409, "conflict", {}, "default", "This cannot be done in the current state, and nothing was changed. Refresh and try again.", "В текущем состоянии это сделать нельзя, ничего не изменено. Обновите данные и попробуйте снова."],
  [409, "already_redeemed", {}, "promo", "You have already used this promo code. Each code works once per account.", "Вы уже использовали этот промокод. Каждый код действует один раз на аккаунт."],
  [409, "promo_exhausted", {}, "promo", "This promo code has been used up. Watch for a new one.", "Этот промокод закончился. Следите за новыми."],
  [422, "idempotency_key_reused", {}, "create", "This request was already sent with other settings. Tap Generate again to send it as a new one.", "Эта картинка уже заказывалась с другими настройками. Нажмите «Создать» ещё раз, чтобы заказать её заново."],
  [429, "rate_limited", { "Retry-After": "21" }, "create", "Too many requests. Try again in 21 seconds.", "Слишком много запросов. Повторите через 21 секунду."],
  [429, "rate_limited", {}, "create", "Too many requests. Wait a moment and try again.", "Слишком много запросов. Подождите немного и попробуйте снова."],
  [429, "too_many_active", { "Retry-After": "10" }, "create", "You have as many pictures in progress as you can at once. Wait for one to finish, then try again in 10 seconds.", "Сейчас рисуется столько картинок, сколько можно одновременно. Дождитесь, пока одна будет готова, и повторите через 10 секунд."],
  [429, "too_many_active", {}, "create", "You have as many pictures in progress as you can at once. Wait for one to finish, then try again.", "Сейчас рисуется столько картинок, сколько можно одновременно. Дождитесь, пока одна будет готова, и попробуйте снова."],
  [503, "temporarily_unavailable", { "Retry-After": "2" }, "default", "The service is busy right now. Try again in 2 seconds.", "Сервис сейчас перегружен. Повторите через 2 секунды."],
  [503, "update_in_progress", { "Retry-After": "1" }, "default", "The service is busy right now. Try again in 1 second.", "Сервис сейчас перегружен. Повторите через 1 секунду."],
  [500, "internal_error", {}, "default", "Something went wrong on our side. Try again.", "У нас что-то пошло не так. Попробуйте ещё раз."],
  [502, null, {}, "default", "Something went wrong on our side. Try again.", "У нас что-то пошло не так. Попробуйте ещё раз."],
  [504, "internal_error", {}, "create", "The server took too long to answer. Try again.", "Сервер долго не отвечает. Попробуйте ещё раз."],
];

describe("every §4 error has its own text in each language (CONTRACT §9)", () => {
  it.each(CASES)("%i %s (%j, %s)", async (status, code, headers, context, en, ru) => {
    const error = await answered(status, code, headers);
    expect(describeError(error, texts("en"), context).text).toBe(en);
    expect(describeError(error, texts("ru"), context).text).toBe(ru);
  });

  it("never shows the server's English message as the main text", async () => {
    for (const [status, code, headers, context] of CASES) {
      const error = await answered(status, code, headers);
      for (const language of ["en", "ru"] as const) {
        expect(describeError(error, texts(language), context).text).not.toContain("An English message.");
      }
    }
  });

  it("gives each code of the table a different text", () => {
    // Two rows share a text on purpose: a 500 and a bare 502 are both "our side".
    expect(new Set(CASES.map((row) => row[4])).size).toBe(CASES.length - 1);
    expect(new Set(CASES.map((row) => row[5])).size).toBe(CASES.length - 1);
  });
});

describe("what to do, besides the text", () => {
  it("offers to buy credits for 402 and to reopen the app for 401", async () => {
    expect(describeError(await answered(402, "insufficient_credits"), texts("ru")).action).toBe("buy");
    expect(describeError(await answered(401, "unauthorized"), texts("ru")).action).toBe("reopen");
  });

  it("counts Retry-After down for every 429 and 503", async () => {
    for (const code of ["rate_limited", "too_many_active", "temporarily_unavailable"]) {
      const error = await answered(code === "temporarily_unavailable" ? 503 : 429, code, { "Retry-After": "30" });
      const shown = describeError(error, texts("ru"), "create", 5);
      expect(shown.action).toBe("wait");
      expect(shown.retryAfter).toBe(30);
      expect(shown.text).toContain("через 5 секунд");
      expect(describeError(error, texts("ru"), "create", 0).text).not.toMatch(/\d/);
    }
  });

  it("keeps the server's message only as a labelled detail where it names what was refused", async () => {
    const invalid = new ApiError("invalid_request", 400, "invalid_request", "prompt must be 1 to 2000 characters.");
    expect(describeError(invalid, texts("ru"), "create").detail).toBe("Ответ сервера: prompt must be 1 to 2000 characters.");
    expect(describeError(invalid, texts("en"), "create").detail).toBe("Server's answer: prompt must be 1 to 2000 characters.");
    const debit = new ApiError("conflict", 409, "conflict", "The balance is 5; removing 10 would make it negative.");
    expect(describeError(debit, texts("ru")).detail).toBe("Ответ сервера: The balance is 5; removing 10 would make it negative.");
    for (const code of ["not_cancellable", "too_many_active", "already_redeemed", "user_banned", "insufficient_credits"]) {
      const error = await answered(409, code);
      expect(describeError(error, texts("ru")).detail).toBeUndefined();
    }
  });

  it("shows the request id of a 500 or a gateway timeout", () => {
    const error = new ApiError("server", 500, "internal_error", "Oops.", undefined, "req-42");
    expect(describeError(error, texts("ru")).detail).toBe("Номер запроса: req-42");
    const timeout = new ApiError("timeout", 504, "internal_error", "Too long.", undefined, "req-43");
    expect(describeError(timeout, texts("en")).detail).toBe("Request id: req-43");
  });

  it("says offline and timeout in the user's language", () => {
    expect(describeError(new ApiError("offline", 0, "offline", "Failed to fetch"), texts("ru")).text).toBe(
      "Нет соединения. Проверьте интернет и попробуйте снова.",
    );
    expect(describeError(new ApiError("timeout", 0, "timeout", "slow"), texts("en")).text).toBe(
      "The server took too long to answer. Try again.",
    );
  });

  it("shows the page's own checks in the user's language", () => {
    expect(describeError(new InputError("prompt_required"), texts("ru")).text).toBe("Сначала напишите описание.");
    expect(describeError(new InputError("photos_required"), texts("en")).text).toBe("Add at least one photo for this model.");
    expect(describeError(new InputError("upload_failed"), texts("ru")).text).toBe("Не удалось загрузить фото. Попробуйте другое.");
  });
});
