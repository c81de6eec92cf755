import { describe, expect, it, vi } from "vitest";
import { ApiClient } from "../src/api";
import { texts } from "../src/i18n";
import { choosePhotos, DEFAULT_UPLOAD_MAX_BYTES, megabytes, PhotoRefused, refusalText, uploadPhoto } from "../src/uploads";

const MB = 1024 * 1024;
const photo = (name: string, type = "image/jpeg", size = 2 * MB) => ({ name, type, size });
const LIMITS = { room: 3, maxImages: 3, maxBytes: DEFAULT_UPLOAD_MAX_BYTES, model: "Nano Banana Edit" };

describe("photos are checked before they are uploaded, and every refusal is said", () => {
  it("takes JPEG, PNG and WebP within the limit, in the order chosen", () => {
    const files = [photo("a.jpg"), photo("b.png", "image/png"), photo("c.webp", "image/webp")];
    expect(choosePhotos(files, LIMITS)).toEqual({ accepted: files, refused: [] });
  });

  it("refuses other types, an empty file, a file over the limit, and photos beyond max_images", () => {
    const files = [
      photo("iphone.heic", "image/heic"),
      photo("funny.gif", "image/gif"),
      photo("unknown", ""),
      photo("empty.jpg", "image/jpeg", 0),
      photo("huge.jpg", "image/jpeg", DEFAULT_UPLOAD_MAX_BYTES + 1),
      photo("1.jpg"),
      photo("2.jpg"),
    ];
    const { accepted, refused } = choosePhotos(files, { ...LIMITS, room: 1 });
    expect(accepted.map((f) => f.name)).toEqual(["1.jpg"]);
    expect(refused).toEqual([
      { kind: "not_an_image", name: "iphone.heic" },
      { kind: "not_an_image", name: "funny.gif" },
      { kind: "not_an_image", name: "unknown" },
      { kind: "not_an_image", name: "empty.jpg" },
      { kind: "too_large", name: "huge.jpg", limit: DEFAULT_UPLOAD_MAX_BYTES },
      { kind: "too_many", max: 3, model: "Nano Banana Edit" },
    ]);
    expect(choosePhotos([photo("exact.jpg", "image/jpeg", DEFAULT_UPLOAD_MAX_BYTES)], LIMITS).refused).toEqual([]);
  });

  it.each([
    ["ru", 1, "Nano Banana Edit принимает не больше 1 картинки, остальные не добавлены."],
    ["ru", 3, "Nano Banana Edit принимает не больше 3 картинок, остальные не добавлены."],
    ["ru", 21, "Nano Banana Edit принимает не больше 21 картинки, остальные не добавлены."],
    ["en", 1, "Nano Banana Edit takes at most 1 picture; the others were not added."],
    ["en", 3, "Nano Banana Edit takes at most 3 pictures; the others were not added."],
  ] as const)("%s: too many photos for a model that takes %i", (language, max, expected) => {
    expect(refusalText({ kind: "too_many", max, model: "Nano Banana Edit" }, texts(language))).toBe(expected);
  });

  it("says the limit in МБ / MB, and what to do, in the user's language", () => {
    const large = { kind: "too_large", name: "cat.jpg", limit: DEFAULT_UPLOAD_MAX_BYTES } as const;
    expect(refusalText(large, texts("ru"))).toBe("Фото «cat.jpg» слишком большое: можно до 10 МБ. Выберите фото поменьше.");
    expect(refusalText(large, texts("en"))).toBe("The photo “cat.jpg” is too large: the limit is 10 MB. Choose a smaller one.");
    expect(refusalText({ ...large, limit: null }, texts("ru"))).toBe("Фото «cat.jpg» слишком большое. Выберите фото поменьше.");
    expect(refusalText({ kind: "not_an_image", name: "a.heic" }, texts("ru"))).toBe(
      "«a.heic» — не картинка JPEG, PNG или WebP. Выберите другое фото или сохраните это как JPEG.",
    );
    expect(refusalText({ kind: "not_an_image", name: "a.heic" }, texts("en"))).toBe(
      "“a.heic” is not a JPEG, PNG or WebP picture. Choose another photo, or save this one as a JPEG.",
    );
  });

  it("writes megabytes as the bot does, never rounding a limit up", () => {
    expect(megabytes(10 * MB, "ru")).toBe("10");
    expect(megabytes(20 * MB + 1, "en")).toBe("20");
    expect(megabytes(2.5 * MB, "ru")).toBe("2,5");
    expect(megabytes(2.99 * MB, "en")).toBe("2.9");
    expect(megabytes(2048, "en")).toBe("0.1");
  });
});

describe("the API's 400 for a photo is said as a refusal, not as a refused picture request", () => {
  const api = (status: number, body: unknown) =>
    new ApiClient({
      initData: () => "x",
      fetch: (async () => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } })) as typeof fetch,
      isOnline: () => true,
    });
  const file = new File([new Uint8Array(6 * MB)], "big.jpg", { type: "image/jpeg" });
  const refusal = async (promise: Promise<unknown>) => {
    const caught = await promise.then(() => null, (error: unknown) => error);
    expect(caught).toBeInstanceOf(PhotoRefused);
    return (caught as PhotoRefused).refusal;
  };

  it("a size below the deployed limit: too large, with the limit the message names", async () => {
    // chalicelib/uploads.py parse_upload_request, with UPLOAD_MAX_BYTES=5242880
    const body = { error: { code: "invalid_request", message: "size must be the file's size in bytes, from 1 to 5242880." } };
    const s3 = vi.fn();
    expect(await refusal(uploadPhoto(api(400, body), file, s3))).toEqual({ kind: "too_large", name: "big.jpg", limit: 5 * MB });
    expect(s3).not.toHaveBeenCalled();
  });

  it("a size refusal whose limit cannot be read: too large, without a number", async () => {
    const body = { error: { code: "invalid_request", message: "size is too large." } };
    expect(await refusal(uploadPhoto(api(400, body), file))).toEqual({ kind: "too_large", name: "big.jpg", limit: null });
  });

  it("a type refusal: not a JPEG, PNG or WebP", async () => {
    const body = { error: { code: "invalid_request", message: "content_type must be one of: image/jpeg, image/png, image/webp." } };
    expect(await refusal(uploadPhoto(api(400, body), file))).toEqual({ kind: "not_an_image", name: "big.jpg" });
  });

  it("any other error stays what it was", async () => {
    const body = { error: { code: "user_banned", message: "banned" } };
    const caught = await uploadPhoto(api(403, body), file).then(() => null, (error: unknown) => error);
    expect(caught).not.toBeInstanceOf(PhotoRefused);
  });
});
