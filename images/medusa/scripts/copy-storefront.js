// `medusa build` compiles TypeScript only; the static storefront is copied
// next to the built server so `medusa start` in .medusa/server can serve it.
const fs = require("fs")
const path = require("path")

const source = path.join(__dirname, "..", "storefront")
const target = path.join(__dirname, "..", ".medusa", "server", "storefront")
fs.rmSync(target, { recursive: true, force: true })
fs.cpSync(source, target, { recursive: true })
for (const name of ["bin"]) {
  const from = path.join(__dirname, "..", name)
  const to = path.join(__dirname, "..", ".medusa", "server", name)
  fs.rmSync(to, { recursive: true, force: true })
  fs.cpSync(from, to, { recursive: true })
}
console.log(`storefront and bin copied to ${path.dirname(target)}`)
