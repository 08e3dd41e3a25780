import type { ExecArgs } from "@medusajs/framework/types"
import { ContainerRegistrationKeys, Modules, ProductStatus } from "@medusajs/framework/utils"
import {
  createApiKeysWorkflow,
  createInventoryLevelsWorkflow,
  createProductsWorkflow,
  createRegionsWorkflow,
  createSalesChannelsWorkflow,
  createShippingOptionsWorkflow,
  createShippingProfilesWorkflow,
  createStockLocationsWorkflow,
  createTaxRegionsWorkflow,
  linkSalesChannelsToApiKeyWorkflow,
  linkSalesChannelsToStockLocationWorkflow,
  updateStoresWorkflow,
} from "@medusajs/medusa/core-flows"

import { STOREFRONT_API_KEY_TITLE, STOREFRONT_SALES_CHANNEL } from "../lib/storefront"

/*
 * The store every new shop starts with. bin/setup.sh runs this on every
 * start, so each step first looks for what it would create (by a stable name,
 * handle or title) and only creates what is missing. A run that died half way
 * is finished by the next one.
 */

const CURRENCY = "eur"
const REGION_NAME = "Europe"
const COUNTRIES = ["de", "fr", "nl", "be", "at", "it", "es", "dk", "se", "gb"]
const STOCK_LOCATION_NAME = "Main warehouse"
const FULFILLMENT_SET_NAME = "Main warehouse delivery"
const SHIPPING_OPTIONS = [
  { name: "Standard shipping", code: "standard", description: "Delivered in 2-3 days.", amount: 5 },
  { name: "Express shipping", code: "express", description: "Delivered tomorrow.", amount: 12 },
]
const STOCKED_QUANTITY = 1000

type SeedProduct = { title: string; handle: string; description: string; sizes: string[]; price: number }

const PRODUCTS: SeedProduct[] = [
  {
    title: "Classic T-Shirt",
    handle: "classic-t-shirt",
    description: "A soft cotton T-shirt for every day.",
    sizes: ["S", "M", "L"],
    price: 19,
  },
  {
    title: "Hooded Sweatshirt",
    handle: "hooded-sweatshirt",
    description: "Warm, heavy and made to last.",
    sizes: ["S", "M", "L"],
    price: 45,
  },
  {
    title: "Canvas Tote Bag",
    handle: "canvas-tote-bag",
    description: "Carries a week of groceries.",
    sizes: ["One size"],
    price: 12,
  },
]

export default async function seedStore({ container }: ExecArgs): Promise<void> {
  const logger = container.resolve(ContainerRegistrationKeys.LOGGER)
  const link = container.resolve(ContainerRegistrationKeys.LINK)
  const query = container.resolve(ContainerRegistrationKeys.QUERY)
  const fulfillment = container.resolve(Modules.FULFILLMENT)
  const salesChannels = container.resolve(Modules.SALES_CHANNEL)
  const storeModule = container.resolve(Modules.STORE)
  const regions = container.resolve(Modules.REGION)
  const taxes = container.resolve(Modules.TAX)
  const stockLocations = container.resolve(Modules.STOCK_LOCATION)
  const apiKeys = container.resolve(Modules.API_KEY)
  const products = container.resolve(Modules.PRODUCT)

  // Sales channel (Medusa creates "Default Sales Channel" on first boot).
  let [channel] = await salesChannels.listSalesChannels({ name: STOREFRONT_SALES_CHANNEL })
  if (!channel) {
    const { result } = await createSalesChannelsWorkflow(container).run({
      input: { salesChannelsData: [{ name: STOREFRONT_SALES_CHANNEL }] },
    })
    channel = result[0]
    logger.info(`seed: created sales channel ${channel.id}`)
  }

  // Region with its currency and the built-in manual payment provider.
  let [region] = await regions.listRegions({ name: REGION_NAME })
  if (!region) {
    const { result } = await createRegionsWorkflow(container).run({
      input: {
        regions: [
          {
            name: REGION_NAME,
            currency_code: CURRENCY,
            countries: COUNTRIES,
            payment_providers: ["pp_system_default"],
          },
        ],
      },
    })
    region = result[0]
    logger.info(`seed: created region ${region.id}`)
  }

  // The store itself: name, currency, defaults. Updating is idempotent.
  const [store] = await storeModule.listStores()
  const storeName = process.env.STORE_NAME || store.name
  await updateStoresWorkflow(container).run({
    input: {
      selector: { id: store.id },
      update: {
        name: storeName,
        supported_currencies: [{ currency_code: CURRENCY, is_default: true }],
        default_sales_channel_id: channel.id,
        default_region_id: region.id,
      },
    },
  })

  // Tax regions (no rates: prices are shown as entered).
  const existingTaxRegions = await taxes.listTaxRegions({ country_code: COUNTRIES })
  const taxed = new Set(existingTaxRegions.map((t) => t.country_code))
  const missingTax = COUNTRIES.filter((c) => !taxed.has(c))
  if (missingTax.length) {
    await createTaxRegionsWorkflow(container).run({
      input: missingTax.map((country_code) => ({ country_code, provider_id: "tp_system" })),
    })
  }

  // Stock location, reachable from the sales channel and fulfilled manually.
  let [location] = await stockLocations.listStockLocations({ name: STOCK_LOCATION_NAME })
  if (!location) {
    const { result } = await createStockLocationsWorkflow(container).run({
      input: {
        locations: [
          {
            name: STOCK_LOCATION_NAME,
            address: { city: "Berlin", country_code: "DE", address_1: "Hauptstrasse 1" },
          },
        ],
      },
    })
    location = result[0]
    await link.create({
      [Modules.STOCK_LOCATION]: { stock_location_id: location.id },
      [Modules.FULFILLMENT]: { fulfillment_provider_id: "manual_manual" },
    })
    await linkSalesChannelsToStockLocationWorkflow(container).run({
      input: { id: location.id, add: [channel.id] },
    })
    logger.info(`seed: created stock location ${location.id}`)
  }

  // Shipping profile (migrations usually create the default one).
  let [profile] = await fulfillment.listShippingProfiles({ type: "default" })
  if (!profile) {
    const { result } = await createShippingProfilesWorkflow(container).run({
      input: { data: [{ name: "Default Shipping Profile", type: "default" }] },
    })
    profile = result[0]
  }

  // Fulfillment set with one service zone covering the region's countries.
  let [fulfillmentSet] = await fulfillment.listFulfillmentSets(
    { name: FULFILLMENT_SET_NAME },
    { relations: ["service_zones"] }
  )
  if (!fulfillmentSet) {
    fulfillmentSet = await fulfillment.createFulfillmentSets({
      name: FULFILLMENT_SET_NAME,
      type: "shipping",
      service_zones: [
        {
          name: REGION_NAME,
          geo_zones: COUNTRIES.map((country_code) => ({ country_code, type: "country" as const })),
        },
      ],
    })
    await link.create({
      [Modules.STOCK_LOCATION]: { stock_location_id: location.id },
      [Modules.FULFILLMENT]: { fulfillment_set_id: fulfillmentSet.id },
    })
    logger.info(`seed: created fulfillment set ${fulfillmentSet.id}`)
  }

  // Shipping options served by the manual fulfillment provider.
  const existingOptions = await fulfillment.listShippingOptions({
    name: SHIPPING_OPTIONS.map((o) => o.name),
  })
  const haveOption = new Set(existingOptions.map((o) => o.name))
  const missingOptions = SHIPPING_OPTIONS.filter((o) => !haveOption.has(o.name))
  if (missingOptions.length) {
    await createShippingOptionsWorkflow(container).run({
      input: missingOptions.map((option) => ({
        name: option.name,
        price_type: "flat" as const,
        provider_id: "manual_manual",
        service_zone_id: fulfillmentSet.service_zones[0].id,
        shipping_profile_id: profile.id,
        type: { label: option.name, description: option.description, code: option.code },
        prices: [
          { currency_code: CURRENCY, amount: option.amount },
          { region_id: region.id, amount: option.amount },
        ],
        rules: [
          { attribute: "enabled_in_store", value: "true", operator: "eq" as const },
          { attribute: "is_return", value: "false", operator: "eq" as const },
        ],
      })),
    })
    logger.info(`seed: created ${missingOptions.length} shipping option(s)`)
  }

  // Publishable API key for the storefront, scoped to the sales channel.
  const [apiKey] = await apiKeys.listApiKeys({
    title: STOREFRONT_API_KEY_TITLE,
    type: "publishable",
  })
  if (!apiKey) {
    const { result } = await createApiKeysWorkflow(container).run({
      input: {
        api_keys: [{ title: STOREFRONT_API_KEY_TITLE, type: "publishable", created_by: "" }],
      },
    })
    await linkSalesChannelsToApiKeyWorkflow(container).run({
      input: { id: result[0].id, add: [channel.id] },
    })
    logger.info(`seed: created publishable API key ${result[0].id}`)
  }

  // Products, each with a price per variant.
  const existingProducts = await products.listProducts({
    handle: PRODUCTS.map((p) => p.handle),
  })
  const haveHandle = new Set(existingProducts.map((p) => p.handle))
  const missingProducts = PRODUCTS.filter((p) => !haveHandle.has(p.handle))
  if (missingProducts.length) {
    await createProductsWorkflow(container).run({
      input: {
        products: missingProducts.map((product) => ({
          title: product.title,
          handle: product.handle,
          description: product.description,
          status: ProductStatus.PUBLISHED,
          shipping_profile_id: profile.id,
          options: [{ title: "Size", values: product.sizes }],
          variants: product.sizes.map((size) => ({
            title: size,
            sku: `${product.handle}-${size}`.toUpperCase().replace(/\s+/g, "-"),
            options: { Size: size },
            manage_inventory: true,
            prices: [{ amount: product.price, currency_code: CURRENCY }],
          })),
          sales_channels: [{ id: channel.id }],
        })),
      },
    })
    logger.info(`seed: created ${missingProducts.length} product(s)`)
  }

  // Stock for every inventory item that has no level at the location yet.
  const { data: items } = await query.graph({
    entity: "inventory_item",
    fields: ["id", "location_levels.location_id"],
  })
  const unstocked = items.filter(
    (item: any) =>
      !(item.location_levels ?? []).some((level: any) => level?.location_id === location.id)
  )
  if (unstocked.length) {
    await createInventoryLevelsWorkflow(container).run({
      input: {
        inventory_levels: unstocked.map((item: any) => ({
          inventory_item_id: item.id,
          location_id: location.id,
          stocked_quantity: STOCKED_QUANTITY,
        })),
      },
    })
    logger.info(`seed: stocked ${unstocked.length} inventory item(s)`)
  }

  logger.info("seed: store is ready")
}
