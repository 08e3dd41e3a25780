import type { NotificationContent } from "@medusajs/framework/types"

// What the order confirmation says. Plain text only: nothing from the shop or
// the shopper is ever interpreted as markup.

export type ConfirmedOrder = {
  display_id: number | string
  currency_code: string
  total: unknown
  items?: { title?: string | null; variant_title?: string | null; quantity?: unknown; total?: unknown }[] | null
  shipping_address?: { first_name?: string | null } | null
}

function money(amount: unknown, currency: string): string {
  const value = Number(amount ?? 0)
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency: currency.toUpperCase() }).format(value)
  } catch {
    return `${value.toFixed(2)} ${currency.toUpperCase()}`
  }
}

export function orderConfirmation(storeName: string, order: ConfirmedOrder): NotificationContent {
  const name = order.shipping_address?.first_name
  const lines = (order.items ?? []).map((item) => {
    const title = item.variant_title ? `${item.title} (${item.variant_title})` : `${item.title}`
    return `  ${Number(item.quantity ?? 0)} x ${title}: ${money(item.total, order.currency_code)}`
  })
  const text = [
    name ? `Hello ${name},` : "Hello,",
    "",
    `thank you for your order #${order.display_id} at ${storeName}.`,
    "",
    ...lines,
    "",
    `Total: ${money(order.total, order.currency_code)}`,
    "",
    "We will write again when it ships.",
    `${storeName}`,
  ].join("\n")
  return { subject: `${storeName}: order #${order.display_id} confirmed`, text }
}
