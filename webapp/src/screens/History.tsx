/** The user's generations, newest first, loaded page by page as the list scrolls (next_cursor). */
import { useEffect, useRef, useState } from "preact/hooks";
import { useApp } from "../context";
import { failureText } from "../failures";
import { modelName } from "../models";
import type { Generation, Page } from "../types";
import { hostDrawsButtons } from "../telegram";
import { ErrorNote } from "../ui";

const PAGE_SIZE = 20;

export function History({ onOpen }: { onOpen: (generation: Generation) => void }) {
  const { api, tx } = useApp();
  const [items, setItems] = useState<Generation[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>(undefined); // undefined: first page not loaded
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const sentinel = useRef<HTMLDivElement>(null);
  const done = cursor === null;

  const loadMore = async () => {
    if (loading || done) return;
    setLoading(true);
    setError(null);
    try {
      const query = `limit=${PAGE_SIZE}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");
      const page = await api.get<Page<Generation>>(`/api/generation?${query}`);
      setItems((old) => [...old, ...page.items]);
      setCursor(page.next_cursor);
    } catch (caught) {
      setError(caught);
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    const node = sentinel.current;
    if (!node || done || error) return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) void loadMore();
    }, { rootMargin: "300px" });
    observer.observe(node);
    return () => observer.disconnect();
  }, [cursor, loading, error]);

  return (
    <div class="screen history">
      {done && items.length === 0 && <p class="empty">{tx.t("history_empty")}</p>}
      <ul class="grid">
        {items.map((g) => (
          <li key={g.id} data-status={g.status} data-id={g.id}>
            <button type="button" onClick={() => onOpen(g)} title={g.prompt}>
              {g.result_urls[0] ? (
                <img src={g.result_urls[0]} alt={g.prompt} />
              ) : (
                <span class="badge">{g.status === "failed" ? "✕" : g.status === "cancelled" ? "–" : "…"}</span>
              )}
            </button>
          </li>
        ))}
      </ul>
      {error ? (
        <div>
          <ErrorNote error={error} />
          <button type="button" class="link" onClick={() => void loadMore()}>
            {tx.t("retry")}
          </button>
        </div>
      ) : null}
      {!done && <div ref={sentinel} class="sentinel">{loading ? tx.t("loading") : ""}</div>}
      {done && items.length > 0 && <p class="hint end">{tx.t("history_end")}</p>}
    </div>
  );
}

/** One generation full screen: the picture, its prompt and status; the back button closes it. */
export function Viewer({ generation, onClose }: { generation: Generation; onClose: () => void }) {
  const { tx, models } = useApp();
  const url = generation.result_urls[0];
  return (
    <div class="viewer" role="dialog" aria-label={generation.prompt}>
      {!hostDrawsButtons() && (
        <button type="button" class="link close" onClick={onClose}>
          ✕ {tx.t("close")}
        </button>
      )}
      {url ? <img src={url} alt={generation.prompt} /> : <p class="status">{generation.status === "failed" ? failureText(generation.error, tx) : tx.t(`status_${generation.status}`)}</p>}
      <p class="prompt">{generation.prompt}</p>
      <p class="hint">
        {modelName(models, generation.model)} · {generation.aspect_ratio} · {tx.plural("credits", generation.cost)}
      </p>
    </div>
  );
}
