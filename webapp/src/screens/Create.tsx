/** The first screen: prompt, model, aspect ratio, reference photos, cost; start and watch a generation. */
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, Submission } from "../api";
import { useApp } from "../context";
import { InputError } from "../errors";
import { failureText } from "../failures";
import { watchGeneration } from "../poll";
import { haptic } from "../telegram";
import type { Generation } from "../types";
import { ErrorNote, MainAction, useCountdown } from "../ui";
import { ACCEPTED_TYPES, choosePhotos, DEFAULT_UPLOAD_MAX_BYTES, type PhotoRefusal, PhotoRefused, refusalText, uploadPhoto } from "../uploads";

interface Photo {
  key: string;
  file: File;
  preview: string;
  uploadId?: string;
  failed?: boolean;
}

interface Started {
  generation: Generation;
  credits: number | null;
}

export function Create({ onOpen }: { onOpen: (generation: Generation) => void }) {
  const { api, tx, me, models, setMe, refreshMe } = useApp();
  const [prompt, setPrompt] = useState("");
  const [modelId, setModelId] = useState(me.settings?.model ?? models[0]?.id ?? "");
  const model = models.find((m) => m.id === modelId) ?? models[0];
  const [aspect, setAspect] = useState(me.settings?.aspect_ratio ?? "1:1");
  const [photos, setPhotos] = useState<Photo[]>([]);
  const [refusals, setRefusals] = useState<PhotoRefusal[]>([]); // photos not taken, and why
  const [maxBytes, setMaxBytes] = useState(DEFAULT_UPLOAD_MAX_BYTES); // lowered when the API names a lower limit
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [current, setCurrent] = useState<Generation | null>(null);
  const [paused, setPaused] = useState(false);
  const waitFor = useCountdown(error instanceof ApiError ? error.retryAfter : undefined, error);

  const aspectRatios = model?.aspect_ratios ?? [];
  const ratio = aspectRatios.includes(aspect) ? aspect : (aspectRatios[0] ?? aspect);
  const usedPhotos = model?.edit ? photos : [];
  const uploading = usedPhotos.some((p) => !p.uploadId && !p.failed);

  // Read at submit time, so one Submission serves every draft (its key is reset when the draft changes).
  const draft = useRef({ prompt, model: model?.id, aspect_ratio: ratio, upload_ids: [] as string[] });
  draft.current = {
    prompt: prompt.trim(),
    model: model?.id,
    aspect_ratio: ratio,
    upload_ids: usedPhotos.flatMap((p) => (p.uploadId ? [p.uploadId] : [])),
  };
  const submission = useMemo(
    () =>
      new Submission<Started>((key) => {
        const { upload_ids, ...rest } = draft.current;
        const body = upload_ids.length ? { ...rest, upload_ids } : rest;
        return api.post<Started>("/api/generation", body, key);
      }),
    [api],
  );
  useEffect(() => submission.reset(), [prompt, modelId, ratio, photos, submission]);

  useEffect(() => {
    if (!current || current.status === "completed" || current.status === "failed" || current.status === "cancelled") return;
    const onVisibility = () => setPaused(document.hidden);
    document.addEventListener("visibilitychange", onVisibility);
    const stop = watchGeneration(
      api,
      current.id,
      (generation) => {
        setCurrent(generation);
        if (generation.status === "completed") haptic("success");
        if (generation.status === "failed" || generation.status === "cancelled") {
          haptic("error");
          void refreshMe(); // the refund
        }
      },
      setError,
    );
    return () => {
      stop();
      document.removeEventListener("visibilitychange", onVisibility);
    };
  }, [current?.id]);

  const start = async () => {
    if (!draft.current.prompt) {
      setError(new InputError("prompt_required"));
      return;
    }
    if (model?.edit && draft.current.upload_ids.length === 0) {
      setError(new InputError("photos_required"));
      return;
    }
    haptic("tap");
    setBusy(true);
    setError(null);
    try {
      const started = await submission.submit();
      // null: charged and queued, but the server could not read the balance just then.
      if (started.credits === null) refreshMe().catch(() => undefined);
      else setMe({ ...me, credits: started.credits });
      setCurrent(started.generation);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  const addPhotos = (files: FileList | null) => {
    if (!files || !model) return;
    const { accepted, refused } = choosePhotos(Array.from(files), {
      room: model.max_images - photos.length,
      maxImages: model.max_images,
      maxBytes,
      model: model.name,
    });
    setRefusals(refused);
    if (refused.length) haptic("error");
    const added = accepted.map((file) => ({ key: `${file.name}-${Math.random()}`, file, preview: URL.createObjectURL(file) }));
    setPhotos((old) => [...old, ...added]);
    for (const photo of added) {
      uploadPhoto(api, photo.file).then(
        (uploadId) => setPhotos((old) => old.map((p) => (p.key === photo.key ? { ...p, uploadId } : p))),
        (caught) => {
          if (caught instanceof PhotoRefused) {
            // Refused for what it is (the deployed size limit is below ours): it never will upload.
            const { refusal } = caught;
            if (refusal.kind === "too_large" && refusal.limit) setMaxBytes(refusal.limit);
            setRefusals((old) => [...old, refusal]);
            removePhoto(photo.key);
            haptic("error");
            return;
          }
          setError(caught);
          setPhotos((old) => old.map((p) => (p.key === photo.key ? { ...p, failed: true } : p)));
        },
      );
    }
  };
  const removePhoto = (key: string) => {
    setPhotos((old) => {
      const gone = old.find((p) => p.key === key);
      if (gone) URL.revokeObjectURL(gone.preview);
      return old.filter((p) => p.key !== key);
    });
  };

  const cost = tx.plural("credits", model?.cost ?? 0);
  const watching = current && current.status !== "completed" && current.status !== "failed" && current.status !== "cancelled";

  return (
    <div class="screen create">
      <label class="field">
        <span>{tx.t("prompt_label")}</span>
        <textarea
          name="prompt"
          rows={3}
          maxLength={2000}
          placeholder={tx.t("prompt_placeholder")}
          value={prompt}
          onInput={(e) => setPrompt(e.currentTarget.value)}
        />
      </label>
      <div class="row">
        <label class="field">
          <span>{tx.t("model_label")}</span>
          <select name="model" value={model?.id} onChange={(e) => setModelId(e.currentTarget.value)}>
            {models.map((m) => (
              <option key={m.id} value={m.id}>
                {m.name} · {tx.plural("credits", m.cost)}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span>{tx.t("aspect_label")}</span>
          <select name="aspect_ratio" value={ratio} onChange={(e) => setAspect(e.currentTarget.value)}>
            {aspectRatios.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
      </div>
      {model?.edit && (
        <div class="photos">
          <span>{tx.t("photos_label")}</span>
          <p class="hint">{tx.plural("photos_hint", model.max_images)}</p>
          <div class="thumbs">
            {photos.map((p) => (
              <figure key={p.key} class={p.failed ? "thumb failed" : "thumb"} data-uploaded={p.uploadId ? "yes" : "no"}>
                <img src={p.preview} alt="" />
                {!p.uploadId && !p.failed && <figcaption>{tx.t("uploading")}</figcaption>}
                <button type="button" class="remove" aria-label={tx.t("remove")} onClick={() => removePhoto(p.key)}>
                  ×
                </button>
              </figure>
            ))}
            {photos.length < model.max_images && (
              <label class="add-photo">
                + {tx.t("add_photo")}
                <input
                  type="file"
                  name="photo"
                  accept={ACCEPTED_TYPES.join(",")}
                  multiple
                  onChange={(e) => {
                    addPhotos(e.currentTarget.files);
                    e.currentTarget.value = "";
                  }}
                />
              </label>
            )}
          </div>
          {refusals.length > 0 && (
            <div class="error refusals" role="alert">
              {refusals.map((refusal, i) => (
                <p key={i}>{refusalText(refusal, tx)}</p>
              ))}
            </div>
          )}
        </div>
      )}
      <p class="cost">{tx.t("cost", { cost })}</p>
      {error ? <ErrorNote error={error} context="create" /> : null}
      {current && (
        <div class="current" data-status={current.status}>
          {current.status === "completed" && current.result_urls[0] ? (
            <button type="button" class="picture" onClick={() => onOpen(current)}>
              <img src={current.result_urls[0]} alt={current.prompt} />
            </button>
          ) : (
            <p class="status">
              {current.status === "failed"
                ? failureText(current.error, tx)
                : tx.t(`status_${current.status}`)}
            </p>
          )}
          {watching && paused && <p class="hint">{tx.t("paused")}</p>}
        </div>
      )}
      <MainAction
        text={tx.t("generate", { cost })}
        enabled={!uploading && !watching && waitFor === 0}
        loading={busy}
        onClick={start}
      />
    </div>
  );
}
