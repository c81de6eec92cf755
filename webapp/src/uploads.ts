/**
 * Reference photos: checked here first (type, size, how many the model takes), then a
 * presigned POST from the API and the file straight to S3 (CONTRACT §5).
 *
 * What the page refuses it says why, in the user's language, instead of dropping the file
 * or showing the API's English 400: not a JPEG/PNG/WebP, larger than the limit (in MB),
 * more photos than the model's `max_images`.
 */
import { ApiError, type ApiClient } from "./api";
import { InputError } from "./errors";
import type { Texts } from "./i18n";
import type { Upload } from "./types";

export const ACCEPTED_TYPES = ["image/jpeg", "image/png", "image/webp"];

/**
 * CONTRACT §2's default UPLOAD_MAX_BYTES. No endpoint tells the deployed value, so the page
 * checks against this one and learns a lower one from POST /api/uploads' 400, whose
 * message names it (chalicelib/uploads.py: "size must be ..., from 1 to N.").
 */
export const DEFAULT_UPLOAD_MAX_BYTES = 10_485_760;

/** What the checks read of a File. */
export interface PhotoFile {
  name: string;
  type: string;
  size: number;
}

export type PhotoRefusal =
  | { kind: "too_large"; name: string; limit: number | null } // null: the server refused it below our limit and did not say its own
  | { kind: "not_an_image"; name: string }
  | { kind: "too_many"; max: number; model: string };

/** POST /api/uploads refused this photo for what it is: telling the user beats retrying it. */
export class PhotoRefused extends Error {
  constructor(readonly refusal: PhotoRefusal) {
    super(refusal.kind);
    this.name = "PhotoRefused";
  }
}

export interface PhotoLimits {
  room: number; // how many more the model takes: its max_images less the photos already added
  maxImages: number;
  maxBytes: number;
  model: string; // its name, for the text
}

/** The files that can be uploaded, in the order chosen, and a refusal for each one that cannot. */
export function choosePhotos<F extends PhotoFile>(files: readonly F[], limits: PhotoLimits): { accepted: F[]; refused: PhotoRefusal[] } {
  const refused: PhotoRefusal[] = [];
  const fit: F[] = [];
  for (const file of files) {
    // An empty file is no picture; HEIC, GIF, ... (or no type at all) neither, for the API.
    if (!ACCEPTED_TYPES.includes(file.type.toLowerCase()) || file.size === 0) refused.push({ kind: "not_an_image", name: file.name });
    else if (file.size > limits.maxBytes) refused.push({ kind: "too_large", name: file.name, limit: limits.maxBytes });
    else fit.push(file);
  }
  const room = Math.max(0, limits.room);
  if (fit.length > room) refused.push({ kind: "too_many", max: limits.maxImages, model: limits.model });
  return { accepted: fit.slice(0, room), refused };
}

/** Megabytes as the bot writes them (whole MB of 1024 x 1024 bytes), rounded down, with one decimal below 10. */
export function megabytes(bytes: number, language: string): string {
  const mb = bytes / (1024 * 1024);
  const shown = mb >= 10 ? Math.floor(mb) : Math.max(0.1, Math.floor(mb * 10) / 10);
  return shown.toLocaleString(language);
}

export function refusalText(refusal: PhotoRefusal, tx: Texts): string {
  switch (refusal.kind) {
    case "too_large":
      return refusal.limit
        ? tx.t("photo_too_large", { name: refusal.name, mb: megabytes(refusal.limit, tx.language) })
        : tx.t("photo_too_large_unknown", { name: refusal.name });
    case "not_an_image":
      return tx.t("photo_not_an_image", { name: refusal.name });
    case "too_many":
      return tx.plural("photos_too_many", refusal.max, { model: refusal.model });
  }
}

/** The API's 400 for a photo, as a refusal; anything else as it came. */
function refusalOf(error: unknown, file: PhotoFile): unknown {
  if (!(error instanceof ApiError) || error.kind !== "invalid_request") return error;
  if (/^size\b/i.test(error.message)) {
    const named = Number(error.message.match(/\bto (\d+)\b/)?.[1]);
    const limit = named > 0 && named < file.size ? named : null;
    return new PhotoRefused({ kind: "too_large", name: file.name, limit });
  }
  if (/^content_type\b/i.test(error.message)) return new PhotoRefused({ kind: "not_an_image", name: file.name });
  return error;
}

export async function uploadPhoto(api: ApiClient, file: File, fetchImpl: typeof fetch = fetch): Promise<string> {
  let upload: Upload;
  try {
    upload = await api.post<Upload>("/api/uploads", { content_type: file.type, size: file.size });
  } catch (error) {
    throw refusalOf(error, file);
  }
  const form = new FormData();
  for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
  form.append("file", file); // S3 requires the file after every other field
  let response: Response;
  try {
    response = await fetchImpl(upload.url, { method: "POST", body: form });
  } catch (error) {
    throw new ApiError("offline", 0, "offline", error instanceof Error ? error.message : "Network error.");
  }
  // S3 refuses a file over the policy's size or of another type (its answer is XML, for developers).
  if (!response.ok) throw new InputError("upload_failed");
  return upload.upload_id;
}
