import { ApiError, login } from "../api.js";
import { h } from "../ui.js";

export const title = "Log in";

function safeNext(params) {
  const next = params.get("next") || "";
  return next.startsWith("/") && !next.startsWith("/login") && !next.startsWith("//") ? next : "/dashboard";
}

export async function render(root, params) {
  const input = h("input", {
    id: "login-key",
    name: "key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    placeholder: "rbx-…",
    "aria-describedby": "login-help login-error",
  });
  const message = h("p", { class: "form-error", id: "login-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button button-primary" }, "Log in");
  const form = h(
    "form",
    { class: "login-form", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "login-key" }, "Admin key"), input),
    h("p", { class: "help", id: "login-help" }, "An admin key of this relaybox. The control token does not open the console."),
    message,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.hidden = true;
    const key = input.value.trim();
    if (!key) {
      message.textContent = "Enter an admin key.";
      message.hidden = false;
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Logging in…";
    try {
      await login(key);
      input.value = "";
      location.hash = `#${safeNext(params)}`;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        message.textContent = "Wrong admin key: this key is not an active admin key of this relaybox.";
      } else {
        message.textContent = error.message;
      }
      message.hidden = false;
      input.select();
      input.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = "Log in";
    }
  });
  root.appendChild(
    h(
      "section",
      { class: "login-card", "aria-labelledby": "login-title" },
      h("div", { class: "login-brand" }, h("img", { src: "/assets/favicon.svg", alt: "", width: 40, height: 40 }), h("h1", { id: "login-title" }, "relaybox")),
      h("p", { class: "muted" }, "Sign in to the admin console."),
      form,
    ),
  );
  input.focus();
}
