/* The archive's only script, and optional: it adds a copy button to APA references and runs the
   search page against the prebuilt index (assets/search-index.js). Nothing is fetched. */
(function () {
  "use strict";

  function fold(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function words(text) {
    return fold(text).split(/[^0-9a-z]+/).filter(function (w) { return w.length > 0; });
  }

  function setUpCopyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      var source = document.getElementById(button.getAttribute("data-copy"));
      var status = button.parentNode.querySelector(".copy-status");
      if (!source) { return; }
      button.hidden = false;
      button.addEventListener("click", function () {
        var done = function () { if (status) { status.textContent = "Copied."; } };
        source.focus();
        source.select();
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(source.value).then(done, function () {
            if (status) { status.textContent = "Selected: press Ctrl+C (\u2318C) to copy."; }
          });
        } else {
          try { document.execCommand("copy"); done(); } catch (e) {
            if (status) { status.textContent = "Selected: press Ctrl+C (\u2318C) to copy."; }
          }
        }
      });
    });
  }

  function score(doc, query) {
    var headline = " " + words(doc.h).join(" ") + " ";
    var terms = " " + doc.w + " ";
    var total = 0;
    for (var i = 0; i < query.length; i++) {
      var prefix = " " + query[i];
      if (terms.indexOf(prefix) === -1) { return 0; }
      total += headline.indexOf(prefix) === -1 ? 1 : 3;
    }
    return total;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text) { node.textContent = text; }
    return node;
  }

  function resultItem(doc, root) {
    var item = element("li", "entry");
    var meta = element("p", "entry-meta", doc.m + " \u00b7 " + doc.t);
    var title = element("h2", "entry-title");
    var link = element("a", "", doc.h);
    link.href = root + doc.u;
    title.appendChild(link);
    item.appendChild(meta);
    item.appendChild(title);
    item.appendChild(element("p", "entry-cite", doc.c));
    return item;
  }

  function setUpSearch() {
    var input = document.getElementById("search-q");
    var results = document.getElementById("search-results");
    var status = document.getElementById("search-status");
    var index = window.ARCHIVE_SEARCH_INDEX;
    if (!input || !results || !status || !index) { return; }
    var root = results.getAttribute("data-root") || "";

    function run() {
      var text = input.value.trim();
      var query = words(text);
      results.textContent = "";
      if (!query.length) {
        status.textContent = index.length + " summaries to search.";
        return;
      }
      var found = [];
      index.forEach(function (doc, position) {
        var points = score(doc, query);
        if (points) { found.push({ doc: doc, points: points, position: position }); }
      });
      found.sort(function (a, b) { return b.points - a.points || a.position - b.position; });
      found.forEach(function (hit) { results.appendChild(resultItem(hit.doc, root)); });
      status.textContent = (found.length === 0 ? "No summary matches" :
        found.length + (found.length === 1 ? " summary matches" : " summaries match")) +
        " \u201c" + text + "\u201d.";
    }

    var params = new URLSearchParams(window.location.search);
    input.value = params.get("q") || "";
    document.getElementById("search-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var url = new URL(window.location.href);
      url.searchParams.set("q", input.value);
      try { window.history.replaceState(null, "", url.href); } catch (e) { /* file:// may refuse */ }
      run();
    });
    input.addEventListener("input", run);
    run();
  }

  setUpCopyButtons();
  setUpSearch();
}());
