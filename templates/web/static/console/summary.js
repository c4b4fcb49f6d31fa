/* The summary form: warn before leaving with unsaved changes (cleared on submit). No inline
   script anywhere: this file is loaded with defer under the console's CSP (script-src 'self'). */
(function () {
  "use strict";
  var form = document.getElementById("summary-form");
  if (!form) { return; }
  var dirty = false;
  function changed() { dirty = true; }
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  form.addEventListener("submit", function () { dirty = false; });
  window.addEventListener("beforeunload", function (event) {
    if (!dirty) { return undefined; }
    event.preventDefault();
    event.returnValue = "";
    return "";
  });
}());
