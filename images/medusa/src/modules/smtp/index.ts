import { ModuleProvider, Modules } from "@medusajs/framework/utils"

import { SmtpNotificationService } from "./service"

// A notification provider for the "email" channel that sends through an SMTP
// relay (medusa-config.ts registers it when SMTP_HOST is set).
export default ModuleProvider(Modules.NOTIFICATION, {
  services: [SmtpNotificationService],
})
