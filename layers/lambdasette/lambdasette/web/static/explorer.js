// The API explorer (/-/api): Swagger UI over this instance's /-/openapi.json.
// A file of its own: the page's CSP allows no inline script. Requests go to this origin;
// a signed-in browser's cookie rides along, and every POST carries the page's CSRF token
// (from <meta name="csrf-token">) - never the session id, which no script can read.
window.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.content : null;
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.spec,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",          // no standalone preset (no top bar to load other specs)
    deepLinking: true,             // /-/api#/<tag> opens a table's operations
    docExpansion: "none",          // a space has many tables: open the one you want
    defaultModelsExpandDepth: 0,
    tryItOutEnabled: true,
    persistAuthorization: false,   // a pasted token is never kept in localStorage
    validatorUrl: null,            // no calls to validator.swagger.io
    requestInterceptor: function (req) {
      if (csrf && req.method && req.method !== "GET" && req.method !== "HEAD") {
        req.headers["X-CSRF-Token"] = csrf;
      }
      return req;
    },
  });
});
