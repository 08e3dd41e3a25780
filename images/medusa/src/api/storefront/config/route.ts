import type { MedusaRequest, MedusaResponse } from "@medusajs/framework/http"
import { ContainerRegistrationKeys } from "@medusajs/framework/utils"

import { STOREFRONT_API_KEY_TITLE } from "../../../lib/storefront"

// GET /storefront/config tells the static storefront which publishable key
// and region to use. Each store seeds its own key, so one image (and one
// storefront build) serves every store. A publishable key is public by
// design: it only scopes Store API requests to a sales channel.
export async function GET(req: MedusaRequest, res: MedusaResponse): Promise<void> {
  const query = req.scope.resolve(ContainerRegistrationKeys.QUERY)

  const { data: keys } = await query.graph({
    entity: "api_key",
    fields: ["token", "revoked_at"],
    filters: { title: STOREFRONT_API_KEY_TITLE, type: "publishable" },
  })
  const key = keys.find((k: any) => !k.revoked_at)

  const { data: stores } = await query.graph({
    entity: "store",
    fields: ["name", "default_region_id"],
  })
  const store = stores[0]

  if (!key || !store?.default_region_id) {
    res.status(503).json({ message: "The store is not set up yet." })
    return
  }

  const { data: regions } = await query.graph({
    entity: "region",
    fields: ["id", "name", "currency_code", "countries.iso_2", "countries.display_name"],
    filters: { id: store.default_region_id },
  })
  const region = regions[0]

  res.setHeader("Cache-Control", "no-cache")
  res.json({
    store_name: store.name,
    publishable_key: key.token,
    region: {
      id: region.id,
      name: region.name,
      currency_code: region.currency_code,
      countries: (region.countries ?? []).map((c: any) => ({
        code: c.iso_2,
        name: c.display_name,
      })),
    },
  })
}
