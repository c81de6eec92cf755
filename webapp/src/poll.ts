/** Watching a generation: poll with backoff, and not at all while the page is hidden. */
import { ApiError, type ApiClient } from "./api";
import { FINISHED, type Generation } from "./types";

export interface PollOptions {
  firstDelayMs?: number;
  factor?: number;
  maxDelayMs?: number;
}

export function watchGeneration(
  api: ApiClient,
  id: string,
  onUpdate: (generation: Generation) => void,
  onError: (error: unknown) => void,
  { firstDelayMs = 800, factor = 1.5, maxDelayMs = 5000 }: PollOptions = {},
): () => void {
  let delay = firstDelayMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let inFlight = false;

  const schedule = () => {
    if (stopped || document.hidden) return; // resumed by visibilitychange
    timer = setTimeout(poll, delay);
    delay = Math.min(maxDelayMs, delay * factor);
  };
  const poll = async () => {
    timer = undefined;
    if (stopped || inFlight) return;
    inFlight = true;
    try {
      const generation = await api.get<Generation>(`/api/generation/${encodeURIComponent(id)}`);
      if (stopped) return;
      onUpdate(generation);
      if (FINISHED.includes(generation.status)) return stop();
    } catch (error) {
      if (error instanceof ApiError && (error.kind === "unauthorized" || error.kind === "not_found")) {
        onError(error);
        return stop();
      }
      delay = Math.min(maxDelayMs, delay * 2); // network trouble: keep watching, less often
    } finally {
      inFlight = false;
    }
    schedule();
  };
  const onVisibility = () => {
    if (document.hidden) {
      clearTimeout(timer);
      timer = undefined;
    } else if (!timer && !inFlight) {
      delay = firstDelayMs;
      void poll();
    }
  };
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisibility);
  };
  document.addEventListener("visibilitychange", onVisibility);
  schedule();
  return stop;
}
