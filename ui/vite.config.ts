/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Tauri serves ui/dist (frontendDist) from its own protocol: relative asset paths, no dev
// server needed for a build, and a fixed port for `npm run dev` so a devUrl can point at it.
export default defineConfig({
  plugins: [react()],
  base: './',
  clearScreen: false,
  server: { host: '127.0.0.1', port: 1420, strictPort: true },
  build: { outDir: 'dist', target: 'es2021', sourcemap: false },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
  },
});
