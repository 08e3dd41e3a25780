// A small storefront on Medusa's Store API: no framework, no build step.
// It asks the server for this store's publishable key and region at runtime
// (GET /storefront/config), so the same file serves every store.
(function () {
  "use strict";

  const CART_KEY = "storeplatform.cart_id";
  const state = { config: null, cart: null };
  const $ = (id) => document.getElementById(id);

  function show(view) {
    for (const id of ["products-view", "cart-view", "checkout-view", "confirmation-view"]) {
      $(id).hidden = id !== view;
    }
  }

  function say(text, kind) {
    $("message").textContent = text || "";
    $("message").className = kind || "";
  }

  function money(amount) {
    if (amount === null || amount === undefined) return "-";
    return new Intl.NumberFormat(undefined, {
      style: "currency",
      currency: state.config.region.currency_code.toUpperCase(),
    }).format(amount);
  }

  async function api(path, options) {
    const headers = { "Content-Type": "application/json" };
    if (state.config) headers["x-publishable-api-key"] = state.config.publishable_key;
    const response = await fetch(path, {
      method: (options && options.method) || "GET",
      headers,
      credentials: "include",
      body: options && options.body ? JSON.stringify(options.body) : undefined,
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(data.message || `${response.status} ${response.statusText}`);
    }
    return data;
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  // --- products -----------------------------------------------------------

  async function loadProducts() {
    const params = new URLSearchParams({
      region_id: state.config.region.id,
      fields: "*variants.calculated_price",
      limit: "50",
    });
    const { products } = await api(`/store/products?${params}`);
    const list = $("products");
    list.replaceChildren();
    for (const product of products) {
      const select = el("select", { "data-testid": "variant-select", "aria-label": "Variant" });
      const variants = [...product.variants].sort(
        (a, b) => (a.variant_rank || 0) - (b.variant_rank || 0)
      );
      for (const variant of variants) {
        const price = variant.calculated_price ? variant.calculated_price.calculated_amount : null;
        select.append(el("option", { value: variant.id, text: `${variant.title} - ${money(price)}` }));
      }
      list.append(
        el("li", { "data-testid": "product", "data-handle": product.handle }, [
          el("h3", { text: product.title }),
          el("p", { text: product.description || "" }),
          select,
          " ",
          el("button", {
            type: "button",
            "data-testid": "add-to-cart",
            text: "Add to cart",
            onclick: () => addToCart(select.value),
          }),
        ])
      );
    }
  }

  // --- cart ---------------------------------------------------------------

  async function loadCart() {
    const id = localStorage.getItem(CART_KEY);
    if (!id) return null;
    try {
      const { cart } = await api(`/store/carts/${id}`);
      if (cart.completed_at) throw new Error("cart already completed");
      return cart;
    } catch (_error) {
      localStorage.removeItem(CART_KEY);
      return null;
    }
  }

  async function ensureCart() {
    if (state.cart) return state.cart;
    const { cart } = await api("/store/carts", {
      method: "POST",
      body: { region_id: state.config.region.id },
    });
    localStorage.setItem(CART_KEY, cart.id);
    return cart;
  }

  function setCart(cart) {
    state.cart = cart;
    const count = cart ? cart.items.reduce((sum, item) => sum + item.quantity, 0) : 0;
    $("cart-count").textContent = String(count);
  }

  async function addToCart(variantId) {
    try {
      const cart = await ensureCart();
      const result = await api(`/store/carts/${cart.id}/line-items`, {
        method: "POST",
        body: { variant_id: variantId, quantity: 1 },
      });
      setCart(result.cart);
      say("Added to your cart.", "info");
    } catch (error) {
      say(`Could not add to cart: ${error.message}`);
    }
  }

  function renderCart() {
    const list = $("cart-items");
    list.replaceChildren();
    const items = state.cart ? state.cart.items : [];
    for (const item of items) {
      list.append(
        el("li", {
          "data-testid": "cart-item",
          text: `${item.product_title} (${item.variant_title}) x ${item.quantity} - ${money(item.total)}`,
        })
      );
    }
    $("cart-subtotal").textContent = state.cart ? money(state.cart.item_subtotal) : "-";
    $("checkout-button").disabled = items.length === 0;
    show("cart-view");
  }

  // --- checkout -----------------------------------------------------------

  function startCheckout() {
    const select = $("country");
    select.replaceChildren();
    for (const country of state.config.region.countries) {
      select.append(el("option", { value: country.code, text: country.name }));
    }
    $("address-form").hidden = false;
    $("shipping-form").hidden = true;
    $("payment-form").hidden = true;
    show("checkout-view");
  }

  async function submitAddress(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    const address = {
      first_name: form.get("first_name"),
      last_name: form.get("last_name"),
      address_1: form.get("address_1"),
      postal_code: form.get("postal_code"),
      city: form.get("city"),
      country_code: form.get("country_code"),
    };
    try {
      const { cart } = await api(`/store/carts/${state.cart.id}`, {
        method: "POST",
        body: { email: form.get("email"), shipping_address: address, billing_address: address },
      });
      setCart(cart);
      const { shipping_options } = await api(`/store/shipping-options?cart_id=${cart.id}`);
      const box = $("shipping-options");
      box.replaceChildren();
      shipping_options.forEach((option, index) => {
        box.append(
          el("label", {}, [
            el("input", {
              type: "radio",
              name: "option_id",
              value: option.id,
              "data-testid": "shipping-option",
              ...(index === 0 ? { checked: "checked" } : {}),
            }),
            ` ${option.name} - ${money(option.amount)}`,
          ])
        );
      });
      if (!shipping_options.length) throw new Error("no shipping option for this address");
      $("shipping-form").hidden = false;
      say("");
    } catch (error) {
      say(`Could not save the address: ${error.message}`);
    }
  }

  async function submitShipping(event) {
    event.preventDefault();
    const optionId = new FormData(event.target).get("option_id");
    try {
      const { cart } = await api(`/store/carts/${state.cart.id}/shipping-methods`, {
        method: "POST",
        body: { option_id: optionId },
      });
      setCart(cart);
      const { payment_collection } = await api("/store/payment-collections", {
        method: "POST",
        body: { cart_id: cart.id },
      });
      await api(`/store/payment-collections/${payment_collection.id}/payment-sessions`, {
        method: "POST",
        body: { provider_id: "pp_system_default" },
      });
      $("checkout-total").textContent = money(cart.total);
      $("payment-form").hidden = false;
      say("");
    } catch (error) {
      say(`Could not choose shipping: ${error.message}`);
    }
  }

  async function placeOrder(event) {
    event.preventDefault();
    try {
      const result = await api(`/store/carts/${state.cart.id}/complete`, { method: "POST" });
      if (result.type !== "order") {
        throw new Error((result.error && result.error.message) || "the order was not placed");
      }
      localStorage.removeItem(CART_KEY);
      setCart(null);
      $("order-number").textContent = `#${result.order.display_id}`;
      $("order-id").textContent = result.order.id;
      $("order-total").textContent = money(result.order.total);
      say("");
      show("confirmation-view");
    } catch (error) {
      say(`Could not place the order: ${error.message}`);
    }
  }

  // --- start --------------------------------------------------------------

  async function start() {
    $("cart-button").addEventListener("click", renderCart);
    $("continue-shopping").addEventListener("click", () => show("products-view"));
    $("back-to-shop").addEventListener("click", () => show("products-view"));
    $("checkout-button").addEventListener("click", startCheckout);
    $("address-form").addEventListener("submit", submitAddress);
    $("shipping-form").addEventListener("submit", submitShipping);
    $("payment-form").addEventListener("submit", placeOrder);
    try {
      const response = await fetch("/storefront/config");
      if (!response.ok) throw new Error("the store is still being set up");
      state.config = await response.json();
      document.title = state.config.store_name;
      $("store-name").textContent = state.config.store_name;
      setCart(await loadCart());
      await loadProducts();
      document.body.dataset.ready = "true";
    } catch (error) {
      say(`The shop is not available: ${error.message}`);
    }
  }

  start();
})();
