import type { MedusaRequest, MedusaResponse } from "@medusajs/framework/http"

import { readStorefrontFile, STOREFRONT_FILES } from "../../../../lib/storefront"

// GET /storefront/assets/:file serves the storefront's script and stylesheet.
// Only the files listed in STOREFRONT_FILES exist; nothing else on disk is
// reachable.
export async function GET(req: MedusaRequest, res: MedusaResponse): Promise<void> {
  const name = req.params.file
  const contentType = Object.prototype.hasOwnProperty.call(STOREFRONT_FILES, name) ? STOREFRONT_FILES[name] : undefined
  if (!contentType || name === "index.html") {
    res.status(404).json({ message: "Not found" })
    return
  }
  res.setHeader("Content-Type", contentType)
  res.setHeader("Cache-Control", "no-cache")
  res.status(200).send(readStorefrontFile(name))
}
