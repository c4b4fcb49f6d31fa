// Drag-to-reorder for the edition's items: HTML5 drag and drop moves the item (and its hidden
// `item` input) in the list, then submits the edition form, as the Move up/down buttons do.
// Keyboard users keep those buttons; without JavaScript nothing here runs and nothing is lost.
(function () {
  "use strict";
  function setUp() {
    var list = document.getElementById("edition-items");
    var form = document.getElementById("edition-form");
    if (!list || !form) { return; }
    var dragged = null;
    Array.prototype.forEach.call(list.querySelectorAll(".edition-item"), function (item) {
      item.setAttribute("draggable", "true");
      item.classList.add("is-draggable");
      item.addEventListener("dragstart", function (event) {
        dragged = item;
        item.classList.add("is-dragged");
        event.dataTransfer.effectAllowed = "move";
        event.dataTransfer.setData("text/plain", item.getAttribute("data-id") || "");
      });
      item.addEventListener("dragend", function () {
        item.classList.remove("is-dragged");
        dragged = null;
      });
      item.addEventListener("dragover", function (event) {
        if (!dragged || dragged === item) { return; }
        event.preventDefault();
        event.dataTransfer.dropEffect = "move";
      });
      item.addEventListener("drop", function (event) {
        if (!dragged || dragged === item) { return; }
        event.preventDefault();
        var box = item.getBoundingClientRect();
        var after = event.clientY > box.top + box.height / 2;
        list.insertBefore(dragged, after ? item.nextSibling : item);
        form.submit();  // the same form and order the buttons send: the item inputs, in order
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
}());
