import type { SubscriberArgs, SubscriberConfig } from "@medusajs/framework"
import { ContainerRegistrationKeys, Modules } from "@medusajs/framework/utils"

import { orderConfirmation } from "../lib/order-email"

// Sends the shopper an order confirmation on the "email" channel: through the
// SMTP relay when one is configured, otherwise Medusa's local provider logs
// it (medusa-config.ts). Runs where background work runs: the server in
// shared mode, the worker in split mode.
export default async function sendOrderConfirmation({
  event: { data },
  container,
}: SubscriberArgs<{ id: string }>): Promise<void> {
  const logger = container.resolve(ContainerRegistrationKeys.LOGGER)
  const query = container.resolve(ContainerRegistrationKeys.QUERY)
  const notifications = container.resolve(Modules.NOTIFICATION)

  const {
    data: [order],
  } = await query.graph({
    entity: "order",
    fields: [
      "id",
      "display_id",
      "email",
      "currency_code",
      "total",
      "items.title",
      "items.variant_title",
      "items.quantity",
      "items.total",
      "shipping_address.first_name",
    ],
    filters: { id: data.id },
  })
  if (!order?.email) {
    logger.warn(`order-placed: order ${data.id} has no e-mail address, no confirmation sent`)
    return
  }
  const {
    data: [store],
  } = await query.graph({ entity: "store", fields: ["name"] })

  await notifications.createNotifications({
    to: order.email,
    channel: "email",
    template: "order-placed",
    data: { order_id: order.id, display_id: order.display_id },
    content: orderConfirmation(store?.name ?? "Our shop", order as any),
    // A redelivered event must not mail the shopper twice.
    idempotency_key: `order-placed-${order.id}`,
  })
}

export const config: SubscriberConfig = {
  event: "order.placed",
}
