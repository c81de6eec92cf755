/** The image models as the user knows them (GET /api/generation/models). */
import type { Model } from "./types";

/**
 * The name a generation's model is shown by, as Create lists it ("Nano Banana").
 *
 * A generation records the model that drew it, edit models included, all of which the
 * list holds; one withdrawn since has no name left to show, so its id is shown instead.
 * (The server's pairing of an old saved edit model with a text model is about settings,
 * not about what drew a picture, so it does not apply here.)
 */
export function modelName(models: readonly Model[], id: string): string {
  return models.find((model) => model.id === id)?.name ?? id;
}
