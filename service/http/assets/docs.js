/* /docs: Swagger UI (its bundle served from /assets, from the installed flask-swagger-ui package) on this
   service's contract, /openapi.json. For reading, the operations are grouped (the API, the service about
   itself, the pages) and OPTIONS, which every path answers alike, is left out; the contract itself is
   unchanged. No validator badge: that would ask another site. */
"use strict";

(function () {
  const GROUPS = [
    { name: "API", description: "Evaluate, grade, differentiate a formula, draw a graph.", test: (path) => path.startsWith("/v1/") },
    { name: "Service", description: "Health, metrics and the contract.", test: (path) => !isPage(path) },
    { name: "Pages", description: "Pages for people and their assets: open without a token.", test: isPage },
  ];

  function isPage(path) {
    return ["/", "/docs", "/redoc", "/playground", "/problems"].includes(path) || path.startsWith("/problems/") || path.startsWith("/assets/");
  }

  /** The contract, grouped for reading: each operation tagged with its group, paths in the groups' order. */
  function forReading(spec) {
    const paths = {};
    for (const group of GROUPS) {
      for (const [path, item] of Object.entries(spec.paths)) {
        if (path in paths || !group.test(path)) continue;
        const shown = {};
        for (const [method, operation] of Object.entries(item)) {
          if (method !== "options") shown[method] = { ...operation, tags: [group.name] };
        }
        paths[path] = shown;
      }
    }
    return { ...spec, paths, tags: GROUPS.map(({ name, description }) => ({ name, description })) };
  }

  fetch("/openapi.json", { credentials: "omit" })
    .then((response) => response.json())
    .then((spec) => {
      window.ui = SwaggerUIBundle({
        spec: forReading(spec),
        dom_id: "#swagger-ui",
        deepLinking: true,
        validatorUrl: null,
        defaultModelsExpandDepth: 0,
        docExpansion: "list",
      });
    });
})();
