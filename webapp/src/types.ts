/** Response shapes of CONTRACT §5, as the Mini App reads them. */

export interface Model {
  id: string;
  name: string;
  cost: number;
  edit: boolean;
  aspect_ratios: string[];
  max_images: number;
}

export interface Referral {
  link: string;
  invited: number;
  earned: number;
}

export interface User {
  id: number;
  first_name: string;
  username?: string | null;
  credits: number;
  active_generations: number;
  banned: boolean;
  // Fields that newer backends add (CONTRACT §5); the app works without them.
  language?: string | null;
  settings?: { model?: string | null; aspect_ratio?: string | null };
  referral?: Referral | null;
}

export type GenerationStatus = "pending" | "processing" | "completed" | "failed" | "cancelled";

export interface Generation {
  id: string;
  status: GenerationStatus;
  prompt: string;
  model: string;
  aspect_ratio: string;
  image_urls: string[];
  upload_ids?: string[];
  cost: number;
  result_urls: string[];
  error: string | null;
  created_at: string;
  updated_at: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface Pack {
  id: string;
  credits: number;
  stars: number;
  title: string;
}

export interface Upload {
  upload_id: string;
  url: string;
  fields: Record<string, string>;
  expires_at: string;
}

export interface LedgerEntry {
  id: string;
  delta: number;
  reason: string;
  created_at: string;
  generation_id?: string | null;
  charge_id?: string | null;
  payment_charge_id?: string | null;
  note?: string | null;
}

export const FINISHED: GenerationStatus[] = ["completed", "failed", "cancelled"];
