import type {
  Logger,
  ProviderSendNotificationDTO,
  ProviderSendNotificationResultsDTO,
} from "@medusajs/framework/types"
import { AbstractNotificationProviderService, MedusaError } from "@medusajs/framework/utils"
import nodemailer from "nodemailer"

const TLS_MODES = ["none", "starttls", "tls"] as const

type TlsMode = (typeof TLS_MODES)[number]

export type SmtpOptions = {
  host: string
  port: number
  // Both empty: the relay takes mail without authentication.
  user?: string
  password?: string
  // Sender address; the chart defaults it to shop@<store host>.
  from: string
  // none: plain SMTP; starttls: upgrade and refuse to send without TLS;
  // tls: TLS from the first byte (usually port 465).
  tls: TlsMode
}

type InjectedDependencies = { logger: Logger }

/*
 * Sends the "email" channel's notifications through the operator's relay with
 * nodemailer. What to send (subject, text, html) comes with each
 * notification's `content`; the subscribers that create notifications
 * (src/subscribers/) write it.
 */
export class SmtpNotificationService extends AbstractNotificationProviderService {
  static identifier = "smtp"

  private readonly logger: Logger
  private readonly from: string
  private readonly transport: ReturnType<typeof nodemailer.createTransport>

  static validateOptions(options: Record<string, unknown>): void {
    const problems: string[] = []
    if (!options.host) problems.push("host (SMTP_HOST) is empty")
    const port = Number(options.port)
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      problems.push(`port (SMTP_PORT) must be 1-65535, not "${options.port}"`)
    }
    if (!options.from) problems.push("from (SMTP_FROM) is empty")
    if (!TLS_MODES.includes(options.tls as TlsMode)) {
      problems.push(`tls (SMTP_TLS) must be one of ${TLS_MODES.join(", ")}, not "${options.tls}"`)
    }
    if (options.password && !options.user) problems.push("a password (SMTP_PASSWORD) needs a user (SMTP_USER)")
    if (problems.length) {
      throw new MedusaError(
        MedusaError.Types.INVALID_DATA,
        `The SMTP notification provider is misconfigured: ${problems.join("; ")}.`
      )
    }
  }

  constructor({ logger }: InjectedDependencies, options: SmtpOptions) {
    super()
    this.logger = logger
    this.from = options.from
    // nodemailer connects per message (no pool): a store sends a few mails an
    // hour, and a relay that drops idle connections then costs nothing.
    this.transport = nodemailer.createTransport({
      host: options.host,
      port: Number(options.port),
      secure: options.tls === "tls",
      requireTLS: options.tls === "starttls",
      ignoreTLS: options.tls === "none",
      auth: options.user ? { user: options.user, pass: options.password ?? "" } : undefined,
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 30_000,
    })
  }

  async send(notification: ProviderSendNotificationDTO): Promise<ProviderSendNotificationResultsDTO> {
    const content = notification.content
    if (!content?.subject || !(content.text || content.html)) {
      throw new MedusaError(
        MedusaError.Types.INVALID_DATA,
        `Notification "${notification.template}" to ${notification.to} has no subject or body to send.`
      )
    }
    const info = await this.transport.sendMail({
      from: notification.from || this.from,
      to: notification.to,
      subject: content.subject,
      text: content.text,
      html: content.html,
    })
    this.logger.info(
      `smtp: sent "${notification.template}" to ${notification.to} (message ${info.messageId})`
    )
    return { id: info.messageId }
  }
}
