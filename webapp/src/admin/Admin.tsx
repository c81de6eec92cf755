/**
 * The operator's pages (CONTRACT §5 admin API, initData of a user in ADMIN_USER_IDS):
 * stats, a user by id, Stars refunds, promo codes, broadcasts. Loaded only when opened.
 */
import type { ComponentChildren } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import type { ApiClient } from "../api";
import { useApp } from "../context";
import type { LedgerEntry, User } from "../types";
import { ErrorNote, Section } from "../ui";
import { CreditChanges } from "./credits";
import { useAdminTexts } from "./texts";

type Json = Record<string, unknown>;

/** Runs one admin call at a time and keeps its error for display. */
function useCall() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async <T,>(call: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await call();
    } catch (caught) {
      setError(caught);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}

/** Rows of [stable key (the API's, for tests and styles), label in the operator's language, value]. */
function Table({ rows }: { rows: [string, string, ComponentChildren][] }) {
  return (
    <table class="kv">
      <tbody>
        {rows.map(([key, label, value]) => (
          <tr key={key}>
            <th>{label}</th>
            <td data-key={key}>{value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Stats({ api }: { api: ApiClient }) {
  const ax = useAdminTexts();
  const [stats, setStats] = useState<{ users: number; generations: Record<string, number>; credits: Record<string, number> } | null>(null);
  const call = useCall();
  const load = () => void call.run(() => api.get<NonNullable<typeof stats>>("/api/admin/stats")).then((s) => s && setStats(s));
  useEffect(load, []);
  return (
    <Section title={ax.t("stats")}>
      {stats && (
        <div class="stats">
          <Table rows={[["users", ax.t("users"), stats.users]]} />
          <h3>{ax.t("generations")}</h3>
          <Table rows={Object.entries(stats.generations).map(([key, n]) => [key, ax.label("status", key), n])} />
          <h3>{ax.t("credits")}</h3>
          <Table rows={Object.entries(stats.credits).map(([key, n]) => [key, ax.label("moved", key), n])} />
        </div>
      )}
      <button type="button" class="link" disabled={call.busy} onClick={load} aria-label={ax.t("refresh")} title={ax.t("refresh")}>
        ↻
      </button>
      {call.error ? <ErrorNote error={call.error} /> : null}
    </Section>
  );
}

function UserLookup({ api }: { api: ApiClient }) {
  const { tx } = useApp();
  const ax = useAdminTexts();
  const [id, setId] = useState("");
  const [found, setFound] = useState<{ user: User; ledger: LedgerEntry[] } | null>(null);
  const [amount, setAmount] = useState("");
  const [reason, setReason] = useState("");
  const call = useCall();
  const changes = useMemo(() => new CreditChanges(api), [api]);
  const target = () => String(found?.user.id ?? id.trim());
  const path = (suffix = "") => `/api/admin/users/${encodeURIComponent(target())}${suffix}`;
  const lookup = () => call.run(() => api.get<{ user: User; ledger: LedgerEntry[] }>(path())).then((f) => f && setFound(f));

  const find = (event: Event) => {
    event.preventDefault();
    setFound(null);
    if (id.trim()) void call.run(() => api.get<{ user: User; ledger: LedgerEntry[] }>(`/api/admin/users/${encodeURIComponent(id.trim())}`)).then((f) => f && setFound(f));
  };
  const change = async (event: Event) => {
    event.preventDefault();
    const updated = await call.run(() => changes.send({ userId: target(), amount: Number(amount), reason: reason.trim() }));
    if (updated) {
      setAmount("");
      await lookup();
    }
  };
  const ban = async (banned: boolean) => {
    if (await call.run(() => api.post<User>(path(banned ? "/ban" : "/unban")))) await lookup();
  };

  return (
    <Section title={ax.t("user")}>
      <form class="inline" onSubmit={find}>
        <input name="user_id" inputMode="numeric" placeholder={ax.t("user_id")} value={id} onInput={(e) => setId(e.currentTarget.value)} />
        <button type="submit" disabled={call.busy}>
          {ax.t("find")}
        </button>
      </form>
      {found && (
        <div class="user-card" data-user={found.user.id}>
          <Table
            rows={[
              ["id", ax.t("field_id"), found.user.id],
              ["name", ax.t("field_name"), `${found.user.first_name}${found.user.username ? ` @${found.user.username}` : ""}`],
              ["credits", ax.t("field_balance"), <b class="admin-credits">{tx.plural("credits", found.user.credits)}</b>],
              ["active_generations", ax.t("field_active"), found.user.active_generations],
              ["banned", ax.t("field_banned"), found.user.banned ? ax.t("yes") : ax.t("no")],
            ]}
          />
          <form class="stack" onSubmit={change}>
            <input name="amount" type="number" step="1" placeholder={ax.t("amount")} value={amount} onInput={(e) => setAmount(e.currentTarget.value)} />
            <input name="reason" placeholder={ax.t("reason")} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
            <button type="submit" disabled={call.busy || !Number(amount) || !reason.trim()}>
              {ax.t("apply")}
            </button>
          </form>
          <button type="button" class={found.user.banned ? "" : "danger"} disabled={call.busy} onClick={() => void ban(!found.user.banned)}>
            {found.user.banned ? ax.t("unban") : ax.t("ban")}
          </button>
          <h3>{ax.t("ledger")}</h3>
          <ul class="ledger">
            {found.ledger.map((entry) => (
              <li key={entry.id} data-reason={entry.reason}>
                <span class={entry.delta < 0 ? "minus" : "plus"}>{entry.delta > 0 ? `+${entry.delta}` : entry.delta}</span> {ax.label("reason", entry.reason)}
                {entry.note ? ` · ${entry.note}` : ""} <time dateTime={entry.created_at}>{ax.date(entry.created_at)}</time>
              </li>
            ))}
          </ul>
        </div>
      )}
      {call.error ? <ErrorNote error={call.error} /> : null}
    </Section>
  );
}

function Refund({ api }: { api: ApiClient }) {
  const ax = useAdminTexts();
  const [charge, setCharge] = useState("");
  const [done, setDone] = useState<Json | null>(null);
  const call = useCall();
  const refund = async (event: Event) => {
    event.preventDefault();
    setDone(null);
    const answer = await call.run(() => api.post(`/api/admin/payments/${encodeURIComponent(charge.trim())}/refund`));
    if (answer) setDone(answer);
  };
  return (
    <Section title={ax.t("refund")}>
      <form class="inline" onSubmit={refund}>
        <input name="charge_id" placeholder={ax.t("charge_id")} value={charge} onInput={(e) => setCharge(e.currentTarget.value)} />
        <button type="submit" class="danger" disabled={call.busy || !charge.trim()}>
          {ax.t("refund_button")}
        </button>
      </form>
      {done && <p class="note ok">{ax.t("refunded")}</p>}
      {call.error ? <ErrorNote error={call.error} /> : null}
    </Section>
  );
}

interface PromoCode {
  code: string;
  credits: number;
  max_uses: number;
  uses: number;
  expires_at: string | null;
}

function PromoCodes({ api }: { api: ApiClient }) {
  const { tx } = useApp();
  const ax = useAdminTexts();
  const [form, setForm] = useState({ code: "", credits: "10", max_uses: "100", expires_at: "" });
  const [shown, setShown] = useState<PromoCode | null>(null);
  const call = useCall();
  const field = (name: keyof typeof form) => ({
    name,
    value: form[name],
    onInput: (e: { currentTarget: HTMLInputElement }) => setForm({ ...form, [name]: e.currentTarget.value }),
  });
  const create = async (event: Event) => {
    event.preventDefault();
    const body: Json = { code: form.code.trim(), credits: Number(form.credits), max_uses: Number(form.max_uses) };
    if (form.expires_at) body.expires_at = new Date(form.expires_at).toISOString();
    const created = await call.run(() => api.post<PromoCode>("/api/admin/promo-codes", body));
    if (created) setShown(created);
  };
  const show = async () => {
    const code = await call.run(() => api.get<PromoCode>(`/api/admin/promo-codes/${encodeURIComponent(form.code.trim())}`));
    if (code) setShown(code);
  };
  return (
    <Section title={ax.t("promo")}>
      <form class="stack" data-form="promo" onSubmit={create}>
        <input placeholder={ax.t("code")} aria-label={ax.t("code")} {...field("code")} />
        <input type="number" min="1" placeholder={ax.t("code_credits")} aria-label={ax.t("code_credits")} {...field("credits")} />
        <input type="number" min="1" placeholder={ax.t("max_uses")} aria-label={ax.t("max_uses")} {...field("max_uses")} />
        <input type="datetime-local" title={ax.t("expires_at")} aria-label={ax.t("expires_at")} {...field("expires_at")} />
        <div class="inline">
          <button type="submit" disabled={call.busy || !form.code.trim()}>
            {ax.t("create")}
          </button>
          <button type="button" disabled={call.busy || !form.code.trim()} onClick={() => void show()}>
            {ax.t("show")}
          </button>
        </div>
      </form>
      {shown && (
        <p class="note" data-promo={shown.code}>
          <b>{shown.code}</b> · {tx.plural("credits", shown.credits)} · {ax.t("uses", { uses: shown.uses, max_uses: shown.max_uses })}
          {shown.expires_at ? ` · ${ax.t("expires", { date: ax.date(shown.expires_at) })}` : ""}
        </p>
      )}
      {call.error ? <ErrorNote error={call.error} /> : null}
    </Section>
  );
}

interface Broadcast {
  id: string;
  status: "queued" | "sending" | "done" | "cancelled";
  audience: string;
  total: number;
  sent: number;
  failed: number;
  blocked: number;
  created_at: string;
}

function Broadcasts({ api }: { api: ApiClient }) {
  const ax = useAdminTexts();
  const [textEn, setTextEn] = useState("");
  const [textRu, setTextRu] = useState("");
  const [audience, setAudience] = useState("all");
  const [broadcast, setBroadcast] = useState<Broadcast | null>(null);
  const [lookupId, setLookupId] = useState("");
  const call = useCall();

  useEffect(() => {
    if (!broadcast || broadcast.status === "done" || broadcast.status === "cancelled" || document.hidden) return;
    const timer = setTimeout(() => {
      api.get<Broadcast>(`/api/admin/broadcasts/${encodeURIComponent(broadcast.id)}`).then(setBroadcast, () => undefined);
    }, 2000);
    return () => clearTimeout(timer);
  }, [broadcast]);

  const send = async (event: Event) => {
    event.preventDefault();
    const text = textRu.trim() ? { en: textEn.trim(), ru: textRu.trim() } : textEn.trim();
    const created = await call.run(() => api.post<Broadcast>("/api/admin/broadcasts", { text, audience }));
    if (created) setBroadcast(created);
  };
  const cancel = async () => {
    if (!broadcast) return;
    const cancelled = await call.run(() => api.post<Broadcast>(`/api/admin/broadcasts/${encodeURIComponent(broadcast.id)}/cancel`));
    if (cancelled) setBroadcast(cancelled);
  };
  const lookup = async (event: Event) => {
    event.preventDefault();
    const found = await call.run(() => api.get<Broadcast>(`/api/admin/broadcasts/${encodeURIComponent(lookupId.trim())}`));
    if (found) setBroadcast(found);
  };

  return (
    <Section title={ax.t("broadcasts")}>
      <form class="stack" data-form="broadcast" onSubmit={send}>
        <textarea name="text_en" rows={3} maxLength={4096} placeholder={ax.t("text_en")} value={textEn} onInput={(e) => setTextEn(e.currentTarget.value)} />
        <textarea name="text_ru" rows={3} maxLength={4096} placeholder={ax.t("text_ru")} value={textRu} onInput={(e) => setTextRu(e.currentTarget.value)} />
        <select name="audience" value={audience} onChange={(e) => setAudience(e.currentTarget.value)} aria-label={ax.t("audience")}>
          <option value="all">{ax.t("audience_all")}</option>
          <option value="paying">{ax.t("audience_paying")}</option>
          <option value="active_30d">{ax.t("audience_active_30d")}</option>
        </select>
        <button type="submit" disabled={call.busy || !textEn.trim()}>
          {ax.t("send")}
        </button>
      </form>
      <form class="inline" onSubmit={lookup}>
        <input name="broadcast_id" placeholder={ax.t("broadcast_id")} value={lookupId} onInput={(e) => setLookupId(e.currentTarget.value)} />
        <button type="submit" disabled={call.busy || !lookupId.trim()}>
          {ax.t("show")}
        </button>
      </form>
      {broadcast && (
        <div class="note" data-broadcast={broadcast.id} data-status={broadcast.status}>
          <p>
            {broadcast.id}: {ax.t("progress", { status: ax.label("broadcast", broadcast.status), sent: broadcast.sent, total: broadcast.total, failed: broadcast.failed, blocked: broadcast.blocked })}
          </p>
          <progress max={broadcast.total || 1} value={broadcast.sent + broadcast.failed + broadcast.blocked} />
          {(broadcast.status === "queued" || broadcast.status === "sending") && (
            <button type="button" class="danger" disabled={call.busy} onClick={() => void cancel()}>
              {ax.t("cancel")}
            </button>
          )}
        </div>
      )}
      {call.error ? <ErrorNote error={call.error} /> : null}
    </Section>
  );
}

export function Admin() {
  const { api } = useApp();
  return (
    <div class="screen admin">
      <Stats api={api} />
      <UserLookup api={api} />
      <Refund api={api} />
      <PromoCodes api={api} />
      <Broadcasts api={api} />
    </div>
  );
}
