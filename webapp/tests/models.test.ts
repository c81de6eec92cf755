import { describe, expect, it } from "vitest";
import { modelName } from "../src/models";
import type { Model } from "../src/types";

const MODELS: Model[] = [
  { id: "google/gemini-2.5-flash-image", name: "Nano Banana", cost: 1, edit: false, aspect_ratios: ["1:1"], max_images: 0 },
  { id: "google/nano-banana-edit", name: "Nano Banana Edit", cost: 1, edit: true, aspect_ratios: ["1:1"], max_images: 3 },
];

describe("a generation's model as the user knows it", () => {
  it("is the name the models list gives, as in Create", () => {
    expect(modelName(MODELS, "google/gemini-2.5-flash-image")).toBe("Nano Banana");
    expect(modelName(MODELS, "google/nano-banana-edit")).toBe("Nano Banana Edit");
  });

  it("is the id for a model the list no longer has, or before the list has loaded", () => {
    expect(modelName(MODELS, "google/imagen-3")).toBe("google/imagen-3");
    expect(modelName([], "google/gemini-2.5-flash-image")).toBe("google/gemini-2.5-flash-image");
  });
});
