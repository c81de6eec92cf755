import preact from "@preact/preset-vite";
import { defineConfig } from "vitest/config";

// Served under /app/ on the API's own origin (local/webapp_server.py, CloudFront in AWS).
export default defineConfig({
  base: "/app/",
  plugins: [preact()],
  // `npm run dev` (hot reload) beside `make run` on its default PORT 8000, which answers /api.
  server: { proxy: { "/api": "http://127.0.0.1:8000" } },
  build: { target: "es2020", outDir: "dist", emptyOutDir: true, assetsInlineLimit: 0 },
  test: { environment: "node", include: ["tests/**/*.test.ts"] },
});
