// Placeholder module: proves the embedded assets are served with a JavaScript content type.
const app = document.getElementById("app");
if (app) {
  app.textContent = "relaybox";
}
