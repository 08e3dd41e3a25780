import path from "path"

import { defineConfig, loadEnv } from "@medusajs/framework/utils"

loadEnv(process.env.NODE_ENV || "development", process.cwd())

// Everything comes from the environment: the chart (charts/medusa) sets these
// variables on both the setup init container and the server, and the native
// test (provisioning/tests/test_medusa_app.py) sets the same ones.
const env = (name: string, fallback = ""): string => process.env[name] ?? fallback
const envBool = (name: string, fallback: boolean): boolean => {
  const value = process.env[name]
  return value === undefined || value === "" ? fallback : ["1", "true", "yes"].includes(value)
}

const redisUrl = env("REDIS_URL")
const localOrigins = "http://localhost:9000,http://127.0.0.1:9000"
// The store's public address (the chart sets <scheme>://<host>): links to
// uploaded files are made from it.
const publicUrl = env("MEDUSA_PUBLIC_URL", `http://localhost:${env("PORT", "9000")}`).replace(/\/+$/, "")

// With REDIS_URL the event bus, workflow engine, locks, cache and sessions
// live in Redis, so they survive a server restart and a second server could
// share them. Without it Medusa falls back to its in-memory modules (fine for
// a laptop, lost on restart).
const redisModules = redisUrl
  ? [
      { resolve: "@medusajs/medusa/event-bus-redis", options: { redisUrl } },
      { resolve: "@medusajs/medusa/cache-redis", options: { redisUrl } },
      { resolve: "@medusajs/medusa/workflow-engine-redis", options: { redis: { redisUrl } } },
      {
        resolve: "@medusajs/medusa/locking",
        options: {
          providers: [
            {
              resolve: "@medusajs/medusa/locking-redis",
              id: "locking-redis",
              is_default: true,
              options: { redisUrl },
            },
          ],
        },
      },
    ]
  : []

// Uploads (product images, CSV imports and exports) go to <app>/static,
// because that is the one folder Medusa serves at /static (the framework's
// express loader: `app.use("/static", express.static(join(baseDir,
// "static")))`, packages/core/framework/src/http/express-loader.ts in 2.21.2,
// not configurable). The chart mounts the store's uploads volume there; the
// rest of /app stays read-only. Private files (imports, exports) share the
// folder, as with Medusa's defaults: the local provider can only hand out
// links to files under /static. Links point at the store's public URL
// instead of the provider's default http://localhost:9000/static.
// Options: packages/modules/providers/file-local/src/services/local-file.ts.
const uploadDir = path.join(process.cwd(), "static")
const fileModule = {
  resolve: "@medusajs/medusa/file",
  options: {
    providers: [
      {
        resolve: "@medusajs/medusa/file-local",
        id: "local",
        options: {
          upload_dir: uploadDir,
          private_upload_dir: uploadDir,
          backend_url: `${publicUrl}/static`,
        },
      },
    ],
  },
}

// E-mail (order confirmations, src/subscribers/order-placed.ts) goes through
// the operator's SMTP relay when SMTP_HOST is set (src/modules/smtp), and is
// only logged otherwise. The admin's notification feed keeps Medusa's local
// provider on its "feed" channel either way.
const smtpHost = env("SMTP_HOST")
const emailProvider = smtpHost
  ? {
      resolve: "./src/modules/smtp",
      id: "smtp",
      options: {
        channels: ["email"],
        host: smtpHost,
        port: Number(env("SMTP_PORT", "587")),
        user: env("SMTP_USER"),
        password: env("SMTP_PASSWORD"),
        from: env("SMTP_FROM"),
        tls: env("SMTP_TLS", "starttls"),
      },
    }
  : {
      resolve: "@medusajs/medusa/notification-local",
      id: "local-email",
      options: { name: "E-mail (logged, no SMTP relay)", channels: ["email"] },
    }
const notificationModule = {
  resolve: "@medusajs/medusa/notification",
  options: {
    providers: [
      {
        resolve: "@medusajs/medusa/notification-local",
        id: "local",
        options: { name: "Local Notification Provider", channels: ["feed"] },
      },
      emailProvider,
    ],
  },
}

module.exports = defineConfig({
  projectConfig: {
    databaseUrl: env("DATABASE_URL"),
    // The store's PostgreSQL runs next to the server inside the namespace,
    // without TLS. DATABASE_SSL=true is for a managed database.
    databaseDriverOptions: envBool("DATABASE_SSL", false)
      ? { connection: { ssl: { rejectUnauthorized: false } } }
      : { connection: { ssl: false } },
    redisUrl: redisUrl || undefined,
    workerMode: env("MEDUSA_WORKER_MODE", "shared") as "shared" | "worker" | "server",
    http: {
      storeCors: env("STORE_CORS", localOrigins),
      adminCors: env("ADMIN_CORS", localOrigins),
      authCors: env("AUTH_CORS", localOrigins),
      jwtSecret: env("JWT_SECRET", "supersecret"),
      cookieSecret: env("COOKIE_SECRET", "supersecret"),
    },
    // Medusa marks the admin session cookie Secure in production; a store
    // served over plain http (a laptop cluster) must turn that off or the
    // browser drops the cookie and the admin cannot log in.
    cookieOptions: { secure: envBool("COOKIE_SECURE", true) },
  },
  admin: {
    path: "/app",
    disable: envBool("ADMIN_DISABLED", false),
    // "/" makes the prebuilt dashboard call the API on whatever host served
    // it, so one image serves every store.
    backendUrl: env("MEDUSA_ADMIN_BACKEND_URL", "/"),
  },
  modules: [...redisModules, fileModule, notificationModule],
})
