// The web console's files, as `npm run build` bundled them into dist/console, served by the app
// itself (same origin as the API, so Easy Auth's session cookie signs people in). Only the built
// files are served — a fixed list read once — under headers that let the page load nothing but them.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { HttpResponseInit } from '@azure/functions';
import { appRoot } from '../app-root';

/** No inline script or style, nothing from another origin, never framed. */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

/** A bundled file named with its content hash, as build-console.ts writes them. */
const CONTENT_HASHED = /\.[A-Z0-9]{8,}\.(js|css)$/;

/** HTTPS only, for a year (browsers ignore it over plain http, as on loopback). */
export const HSTS = { 'Strict-Transport-Security': 'max-age=31536000' };

export const SECURITY_HEADERS = {
  'Content-Security-Policy': CONSOLE_CSP,
  ...HSTS,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

interface Asset {
  body: Buffer;
  type: string;
}

let assets: Map<string, Asset> | null = null;

/** Built file name → contents (index.html included). Empty when the console was not built. */
function builtAssets(dir = path.join(appRoot, 'dist', 'console')): Map<string, Asset> {
  if (assets) return assets;
  const found = new Map<string, Asset>();
  if (existsSync(dir)) {
    for (const name of readdirSync(dir)) {
      const type = TYPES[path.extname(name)];
      if (type) found.set(name, { body: readFileSync(path.join(dir, name)), type });
    }
  }
  return (assets = found);
}

/**
 * The response for a path below the site root: `/` is the console's page, `/console/<file>` its
 * bundled files (their names carry a content hash, so they may be cached for long), anything else 404.
 */
export function consoleResponse(rest: string): HttpResponseInit {
  const files = builtAssets();
  const page = rest === '' || rest === 'index.html';
  const name = page ? 'index.html' : /^console\/([A-Za-z0-9._-]+)$/.exec(rest)?.[1];
  const asset = name ? files.get(name) : undefined;
  if (!asset) {
    const message = files.size === 0 ? 'The console was not built: run npm run build' : 'Not found';
    return {
      status: 404,
      body: message,
      headers: { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' },
    };
  }
  // Only files whose names carry their content hash (app.KEXVS2ZC.js) may be cached for good.
  const caching = !page && CONTENT_HASHED.test(name!) ? 'public, max-age=31536000, immutable' : 'no-cache';
  return {
    status: 200,
    body: asset.body,
    headers: { ...SECURITY_HEADERS, 'Content-Type': asset.type, 'Cache-Control': caching },
  };
}
