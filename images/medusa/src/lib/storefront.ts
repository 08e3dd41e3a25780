import fs from "fs"
import path from "path"

// The seed (src/scripts/seed.ts) creates these; the storefront routes find
// them by the same names.
export const STOREFRONT_SALES_CHANNEL = "Default Sales Channel"
export const STOREFRONT_API_KEY_TITLE = "Storefront"

// The static storefront ships next to the built server (package.json "build"
// copies storefront/ into .medusa/server/). `medusa start` and
// `medusa develop` both run with the app directory as the working directory.
const STOREFRONT_DIR = path.join(process.cwd(), "storefront")

export const STOREFRONT_FILES: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
}

const cache = new Map<string, Buffer>()

export function readStorefrontFile(name: string): Buffer {
  let body = cache.get(name)
  if (!body) {
    body = fs.readFileSync(path.join(STOREFRONT_DIR, name))
    cache.set(name, body)
  }
  return body
}
