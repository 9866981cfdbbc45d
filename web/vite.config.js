import { defineConfig } from 'vite';

// The dashboard is built into dist/, which package web embeds. JSX goes
// through Vite's own transformer (oxc) with Preact's automatic runtime, so
// no Babel plugin is needed.
export default defineConfig({
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    // Vite would inline small assets as data: URLs; keep every asset a file
    // so that the Content-Security-Policy can stay strict.
    assetsInlineLimit: 0,
  },
  server: {
    // `npm run dev` against a running `ostask serve --sim --listen 127.0.0.1:8080`.
    proxy: { '/v1': 'http://127.0.0.1:8080' },
  },
});
