#!/usr/bin/env node
/*
 * Build-time step of the image (Dockerfile, final stage, as root): create the
 * empty `migrations` folder of every Medusa module and module provider this
 * app's config can load that ships none, so `medusa db:migrate` never has to
 * create one at run time.
 *
 * Why: `db:migrate` builds one migration script per module and per provider
 * that has no `runMigrations` of its own, pointed at
 * `<dirname of the module's entry file>/migrations` (Medusa 2.21.2,
 * packages/core/modules-sdk/src/loaders/utils/load-internal.ts,
 * https://github.com/medusajs/medusa/blob/v2.21.2/packages/core/modules-sdk/src/loaders/utils/load-internal.ts
 * `pathToMigrations: join(moduleResources.normalizedPath, "migrations")`).
 * The script opens a MikroORM connection with that path and runs
 * `Migrator.up()`, whose first step is `ensureMigrationsDirExists()`:
 * `fs-extra.ensureDir(path)` unless a `migrationsList` is given, which Medusa
 * never gives (MikroORM 6.6, packages/migrations/src/Migrator.ts,
 * https://github.com/mikro-orm/mikro-orm/blob/v6.6.14/packages/migrations/src/Migrator.ts).
 * Modules without tables (auth-emailpass, fulfillment-manual,
 * notification-local, cache-redis, event-bus-redis, locking, locking-redis,
 * file, file-local, our own providers) ship no such folder, so as uid 1000 on
 * a root-owned (or read-only) /app every `db:migrate` failed with
 * `EACCES: permission denied, mkdir '.../dist/migrations'`.
 * An existing folder makes ensureDir a no-op, and an empty one holds no
 * migration to run. Medusa passes `snapshot: false` to these connections
 * (packages/core/utils/src/modules-sdk/migration-scripts/migration-up.ts), so
 * nothing else is written next to them.
 *
 * Which modules: everything `defineConfig` resolves from medusa-config.js
 * (Medusa's defaults plus ours) and the framework's `mergeDefaultModules`,
 * in each mode the config has (with and without REDIS_URL, with and without
 * an SMTP relay), resolved the way the loader resolves them: the `resolve`
 * path from the app directory, then the package a re-export names in its
 * `discoveryPath`. The folders stay root-owned; nothing becomes writable.
 */
const fs = require("fs")
const path = require("path")

const APP_DIR = path.resolve(process.argv[2] || process.cwd())

// Every branch of medusa-config.ts that picks modules. The values are never
// used to connect: only which modules the config names matters.
const CONFIG_MODES = [
  { name: "in-memory modules, mail logged", env: { REDIS_URL: "", SMTP_HOST: "" } },
  {
    name: "Redis modules, SMTP relay",
    env: { REDIS_URL: "redis://build-time.invalid:6379", SMTP_HOST: "smtp.build-time.invalid" },
  },
]

function requireFromApp(request) {
  return require(require.resolve(request, { paths: [APP_DIR] }))
}

const { normalizeImportPathWithSource } = requireFromApp("@medusajs/framework/utils")
const { ModulesDefinition } = requireFromApp("@medusajs/framework/modules-sdk")

function loadConfig(env) {
  const saved = {}
  for (const [name, value] of Object.entries(env)) {
    saved[name] = process.env[name]
    process.env[name] = value
  }
  const configPath = require.resolve(path.join(APP_DIR, "medusa-config"))
  delete require.cache[configPath]
  try {
    const config = require(configPath)
    return config.default ?? config
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  }
}

// The `resolve` strings of every module and provider, as the framework
// merges them (MedusaAppLoader.mergeDefaultModules adds the defaults the
// config does not name).
function resolvePaths(config) {
  const modules = { ...config.modules }
  for (const definition of Object.values(ModulesDefinition)) {
    if (definition.defaultPackage && !(definition.key in modules)) {
      modules[definition.key] = definition.defaultModuleDeclaration ?? {}
    }
  }
  const found = []
  for (const [key, declaration] of Object.entries(modules)) {
    if (declaration === false || declaration?.disable) continue
    const resolve =
      typeof declaration === "string"
        ? declaration
        : declaration?.resolve ?? ModulesDefinition[key]?.defaultPackage
    if (typeof resolve === "string" && resolve) found.push(resolve)
    for (const provider of declaration?.options?.providers ?? []) {
      if (typeof provider.resolve === "string") found.push(provider.resolve)
    }
  }
  return found
}

// Where the migrator would look, or null when the module runs its own
// migrations (load-internal.ts: resolveModuleExports + loadResources).
function migrationDir(resolve) {
  const resolutionPath = require.resolve(normalizeImportPathWithSource(resolve, APP_DIR), {
    paths: [APP_DIR],
  })
  const exported = require(resolutionPath)
  let discoveryPath = resolutionPath
  let loaded = exported.default ?? exported
  if ("discoveryPath" in exported) {
    discoveryPath = exported.discoveryPath
    const reExported = require(discoveryPath)
    loaded = reExported.default ?? reExported
  }
  if (loaded.runMigrations && loaded.revertMigration) return null
  const entry = require.resolve(discoveryPath, { paths: [APP_DIR] })
  return path.join(path.dirname(entry), "migrations")
}

const created = []
const seen = new Set()
for (const mode of CONFIG_MODES) {
  for (const resolve of resolvePaths(loadConfig(mode.env))) {
    const dir = migrationDir(resolve)
    if (!dir || seen.has(dir)) continue
    seen.add(dir)
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { mode: 0o755 })
      created.push(path.relative(APP_DIR, dir))
    }
  }
}
console.log(
  `prepare-migration-dirs: ${seen.size} modules and providers checked, ` +
    `${created.length} empty migrations folders created:\n  ${created.join("\n  ")}`
)
