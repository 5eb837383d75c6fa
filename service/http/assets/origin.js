// The curl commands on a page name the address the browser reached: the server writes the default
// one, never the request's Host header, and this fills in the real one.
"use strict";
for (const element of document.querySelectorAll(".origin")) {
  element.textContent = window.location.origin;
}
