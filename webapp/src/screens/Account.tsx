/** Credits: buy a pack with Stars, redeem a promo code, the referral link, the language. */
import { useEffect, useState } from "preact/hooks";
import { useApp } from "../context";
import { LANGUAGES, type Language } from "../i18n";
import { awaitCredit } from "../payments";
import { haptic, openInvoice } from "../telegram";
import type { Pack, User } from "../types";
import { ErrorNote, Section } from "../ui";

type InvoiceNote = "invoice_open" | "paid" | "payment_crediting" | "invoice_cancelled" | "invoice_failed" | "invoice_pending";

function Packs() {
  const { api, tx, me, refreshMe } = useApp();
  const [packs, setPacks] = useState<Pack[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [open, setOpen] = useState(false);
  const [note, setNote] = useState<InvoiceNote | null>(null);
  // The balance before a payment whose credits have not shown yet: any later refresh that
  // raises it (the app shown again, the next open) turns the note into "paid".
  const [uncredited, setUncredited] = useState<number | null>(null);

  useEffect(() => {
    if (uncredited === null) return;
    if (me.credits > uncredited) {
      setUncredited(null);
      setNote("paid");
      return;
    }
    const onShown = () => {
      if (!document.hidden) refreshMe().catch(() => undefined);
    };
    document.addEventListener("visibilitychange", onShown);
    return () => document.removeEventListener("visibilitychange", onShown);
  }, [uncredited, me.credits]);

  useEffect(() => {
    api.get<{ packs: Pack[] }>("/api/packs").then((answer) => setPacks(answer.packs), setError);
  }, [api]);

  const buy = async (pack: Pack) => {
    if (open) return;
    haptic("tap");
    setOpen(true);
    setError(null);
    setNote(null);
    setUncredited(null);
    const before = me.credits;
    try {
      const { invoice_link } = await api.post<{ invoice_link: string }>("/api/payments/invoice", { pack_id: pack.id });
      setNote("invoice_open");
      const status = await openInvoice(invoice_link);
      setNote(status === "paid" ? "paid" : `invoice_${status}`);
      if (status === "paid") haptic("success");
      if (status === "paid" || status === "pending") {
        if (await awaitCredit(refreshMe, before)) setNote("paid");
        else {
          if (status === "paid") setNote("payment_crediting");
          setUncredited(before);
        }
      }
    } catch (caught) {
      setError(caught);
    } finally {
      setOpen(false);
    }
  };

  return (
    <Section title={tx.t("buy_title")}>
      {packs === null && !error && <p class="hint">{tx.t("loading")}</p>}
      <div class="packs">
        {packs?.map((pack) => (
          <button key={pack.id} type="button" class="pack" data-pack={pack.id} disabled={open} onClick={() => void buy(pack)}>
            {tx.t("buy_pack", { credits: tx.plural("credits", pack.credits), stars: pack.stars })}
          </button>
        ))}
      </div>
      {note && <p class="note" data-note={note}>{tx.t(note)}</p>}
      {error ? <ErrorNote error={error} /> : null}
    </Section>
  );
}

function Promo() {
  const { api, tx, me, setMe } = useApp();
  const [code, setCode] = useState("");
  const [granted, setGranted] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const redeem = async (event: Event) => {
    event.preventDefault();
    if (!code.trim() || busy) return;
    setBusy(true);
    setError(null);
    setGranted(null);
    try {
      const answer = await api.post<{ granted: number; credits: number }>("/api/promo/redeem", { code: code.trim() });
      setMe({ ...me, credits: answer.credits });
      setGranted(answer.granted);
      setCode("");
      haptic("success");
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Section title={tx.t("promo_title")}>
      <form class="inline" onSubmit={redeem}>
        <input name="promo" value={code} placeholder={tx.t("promo_placeholder")} autocomplete="off" onInput={(e) => setCode(e.currentTarget.value)} />
        <button type="submit" disabled={busy || !code.trim()}>
          {tx.t("promo_redeem")}
        </button>
      </form>
      {granted !== null && <p class="note ok">{tx.t("promo_granted", { credits: tx.plural("credits", granted) })}</p>}
      {error ? <ErrorNote error={error} context="promo" /> : null}
    </Section>
  );
}

async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
}

function Referral() {
  const { tx, me } = useApp();
  const [copied, setCopied] = useState(false);
  const referral = me.referral;
  if (!referral?.link) return null;
  return (
    <Section title={tx.t("referral_title")}>
      <p class="hint">{tx.t("referral_hint")}</p>
      <div class="inline">
        <input readOnly name="referral" value={referral.link} onFocus={(e) => e.currentTarget.select()} />
        <button
          type="button"
          onClick={() => void copyText(referral.link).then(() => (setCopied(true), haptic("success")))}
        >
          {copied ? tx.t("copied") : tx.t("copy")}
        </button>
      </div>
      <p class="hint">
        {tx.t("referral_stats", { people: tx.plural("people", referral.invited), credits: tx.plural("credits", referral.earned) })}
      </p>
    </Section>
  );
}

function LanguageSwitch() {
  const { api, tx, setMe, setLanguage } = useApp();
  const [error, setError] = useState<unknown>(null);
  const choose = async (language: Language) => {
    setLanguage(language); // at once; saved for the bot too
    setError(null);
    try {
      setMe(await api.put<User>("/api/user/settings", { language }));
    } catch (caught) {
      setError(caught);
    }
  };
  return (
    <Section title={tx.t("language_title")}>
      <div class="segmented">
        {LANGUAGES.map((l) => (
          <button key={l.id} type="button" data-lang={l.id} aria-pressed={tx.language === l.id} onClick={() => void choose(l.id)}>
            {l.name}
          </button>
        ))}
      </div>
      {error ? <ErrorNote error={error} /> : null}
    </Section>
  );
}

export function Account() {
  return (
    <div class="screen account">
      <Packs />
      <Promo />
      <Referral />
      <LanguageSwitch />
    </div>
  );
}
