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
  modules: redisModules,
})
