import preact from "@preact/preset-vite";
import { defineConfig } from "vitest/config";

// Served under /app/ on the API's own origin (local/webapp_server.py, CloudFront in AWS).
export default defineConfig({
  base: "/app/",
  plugins: [preact()],
  build: { target: "es2020", outDir: "dist", emptyOutDir: true, assetsInlineLimit: 0 },
  test: { environment: "node", include: ["tests/**/*.test.ts"] },
});
