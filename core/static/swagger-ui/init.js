// Starts Swagger UI on /api/docs. Kept out of the page so the strict CSP needs no 'unsafe-inline':
// the spec URL and any OPENAPI_SWAGGER_UI_CONFIG come from data attributes of the container.
(function () {
  "use strict";
  window.addEventListener("load", function () {
    var container = document.getElementById("swagger-ui-container");
    var config = JSON.parse(container.getAttribute("data-config") || "{}");
    config.url = container.getAttribute("data-spec-url");
    config.dom_id = "#swagger-ui-container";
    window.ui = window.SwaggerUIBundle(config);
  });
})();
