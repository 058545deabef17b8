// The router: hash routes (#/name?query) → page modules loaded with import(), the nav, logout.
import { ApiError, currentSession, loadSession, logout } from "./api.js";
import { errorBox, h, loading, toast } from "./ui.js";

const NAV = [
  { route: "dashboard", label: "Dashboard" },
  { route: "keys", label: "Keys" },
  { route: "channels", label: "Channels" },
  { route: "pricing", label: "Pricing" },
  { route: "settings", label: "Settings" },
  { route: "logs", label: "Logs" },
  { route: "import", label: "Import" },
  { route: "cluster", label: "Cluster" },
];
const ROUTES = new Set([...NAV.map((item) => item.route), "login"]);

const shell = document.getElementById("shell");
const nav = document.getElementById("nav");
const main = document.getElementById("main");
const menuButton = document.getElementById("menu-button");

let navigation = 0;
let cleanup = null;
let navBuiltFor = null; // the session the nav shows (rebuilt after another login)

/** "#/logs?model=x" → {name: "logs", params, path: "/logs?model=x"} */
export function parseHash(hash = location.hash) {
  const path = hash.replace(/^#/, "") || "/dashboard";
  const [route, query = ""] = path.replace(/^\//, "").split("?", 2);
  return { name: route || "dashboard", params: new URLSearchParams(query), path };
}

/** Changes the query of the current route (a filtered view is a link) without re-rendering. */
export function replaceQuery(params) {
  const { name } = parseHash();
  const query = params.toString();
  history.replaceState(null, "", `#/${name}${query ? `?${query}` : ""}`);
}

function buildNav() {
  const session = currentSession();
  nav.replaceChildren(
    h(
      "ul",
      { class: "nav-list" },
      NAV.map((item) => h("li", {}, h("a", { href: `#/${item.route}`, "data-route": item.route }, item.label))),
    ),
    h(
      "div",
      { class: "nav-foot" },
      session?.key ? h("p", { class: "nav-user", title: session.key.id }, "Signed in as ", h("strong", {}, session.key.name || session.key.id)) : null,
      h("button", { type: "button", class: "button button-quiet", id: "logout-button", on: { click: onLogout } }, "Log out"),
    ),
  );
}

async function onLogout() {
  try {
    await logout();
  } catch (error) {
    toast(error.message, "error");
  }
  location.hash = "#/login";
}

function markCurrent(name) {
  for (const link of nav.querySelectorAll("a[data-route]")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function setMenu(open) {
  shell.classList.toggle("nav-open", open);
  menuButton.setAttribute("aria-expanded", String(open));
}

async function route() {
  const ticket = ++navigation;
  const { name, params, path } = parseHash();
  setMenu(false);
  if (typeof cleanup === "function") {
    try {
      cleanup();
    } catch {
      // a page's cleanup must not stop the next page
    }
  }
  cleanup = null;

  if (name !== "login" && !currentSession()) {
    let session = null;
    try {
      session = await loadSession();
    } catch (error) {
      if (ticket !== navigation) return;
      main.replaceChildren(errorBox(error, route));
      return;
    }
    if (ticket !== navigation) return;
    if (!session) {
      location.hash = `#/login?next=${encodeURIComponent(path)}`;
      return;
    }
  }
  const loggedIn = name !== "login" && !!currentSession();
  shell.classList.toggle("logged-in", loggedIn);
  nav.hidden = !loggedIn;
  if (loggedIn && navBuiltFor !== currentSession()) {
    buildNav();
    navBuiltFor = currentSession();
  }
  if (loggedIn) markCurrent(name);

  const root = h("div", { class: `page page-${name}` });
  main.replaceChildren(root);
  if (!ROUTES.has(name)) {
    document.title = "Not found · relaybox";
    root.append(h("h1", {}, "Not found"), h("p", {}, "There is no page here. ", h("a", { href: "#/dashboard" }, "Go to the dashboard.")));
    return;
  }
  root.appendChild(loading());
  let page;
  try {
    page = await import(`./pages/${name}.js`);
  } catch (error) {
    if (ticket !== navigation) return;
    root.replaceChildren(h("h1", {}, name), errorBox(new Error(`This page could not be loaded (${error.message}).`)));
    return;
  }
  if (ticket !== navigation) return;
  document.title = `${page.title || name} · relaybox`;
  root.replaceChildren();
  try {
    const result = await page.render(root, params);
    if (ticket === navigation) cleanup = result;
    else if (typeof result === "function") result();
  } catch (error) {
    if (ticket !== navigation) return;
    if (error instanceof ApiError && error.status === 401) return; // api.js already went to login
    root.appendChild(errorBox(error, route));
  }
  if (ticket === navigation && name !== "login") main.focus({ preventScroll: true });
}

menuButton.addEventListener("click", () => setMenu(!shell.classList.contains("nav-open")));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && shell.classList.contains("nav-open")) {
    setMenu(false);
    menuButton.focus();
  }
});
window.addEventListener("hashchange", route);
if (!location.hash || location.hash === "#" || location.hash === "#/") history.replaceState(null, "", "#/dashboard");
route();
