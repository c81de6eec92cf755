/** Reference photos: a presigned POST from the API, then the file straight to S3 (CONTRACT §5). */
import { ApiError, type ApiClient } from "./api";
import { InputError } from "./errors";
import type { Upload } from "./types";

export const ACCEPTED_TYPES = ["image/jpeg", "image/png", "image/webp"];

export async function uploadPhoto(api: ApiClient, file: File, fetchImpl: typeof fetch = fetch): Promise<string> {
  const upload = await api.post<Upload>("/api/uploads", { content_type: file.type, size: file.size });
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
