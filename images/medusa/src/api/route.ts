import type { MedusaRequest, MedusaResponse } from "@medusajs/framework/http"

import { readStorefrontFile, STOREFRONT_FILES } from "../lib/storefront"

// GET / serves the storefront page. The platform's readiness check expects
// a 200 here.
export async function GET(_req: MedusaRequest, res: MedusaResponse): Promise<void> {
  res.setHeader("Content-Type", STOREFRONT_FILES["index.html"])
  res.setHeader("Cache-Control", "no-cache")
  res.status(200).send(readStorefrontFile("index.html"))
}
