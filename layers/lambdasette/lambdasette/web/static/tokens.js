// The tokens pages: the create form's live summary and the copy button.
// A file of its own (the CSP allows no inline script); it reads the page, never sends anything.
(function () {
  "use strict";

  function text(parent, tag, content) {
    var el = document.createElement(tag);
    el.textContent = content;  // never innerHTML: names come from the data
    parent.appendChild(el);
    return el;
  }

  function summarize(form) {
    var list = document.getElementById("summary-list");
    var expiry = document.getElementById("summary-expiry");
    var summary = document.getElementById("summary");
    var restricted = form.querySelector('input[name="scope"][value="restricted"]').checked;
    document.getElementById("restrictions").classList.toggle("hidden", !restricted);
    list.replaceChildren();
    if (!restricted) {
      text(list, "li", "everything " + document.getElementById("who-actor").textContent + " can do");
    } else {
      var ticked = form.querySelectorAll('input[name="restrict"]:checked');
      if (!ticked.length) text(list, "li", "nothing yet: tick at least one action");
      ticked.forEach(function (box) { text(list, "li", box.dataset.label); });
    }
    var limit = summary.dataset.limit;
    if (form.querySelector('input[name="expiry"][value="after"]').checked) {
      var amount = parseInt(document.getElementById("expiry-amount").value, 10);
      var unit = document.getElementById("expiry-unit").value;
      if (!(amount >= 1)) {
        expiry.textContent = "Give a number of " + unit + " of at least 1.";
      } else {
        if (amount === 1) unit = unit.replace(/s$/, "");
        expiry.textContent = "It expires " + amount + " " + unit + " after it is created" +
          (limit ? ", or when your token ends (" + limit + ") if that is sooner." : ".");
      }
    } else {
      expiry.textContent = limit ? "It ends when your token ends: " + limit + "." : "It never expires.";
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("create-form");
    if (form) {
      form.addEventListener("input", function () { summarize(form); });
      form.addEventListener("change", function () { summarize(form); });
      document.getElementById("expiry-amount").addEventListener("focus", function () {
        document.getElementById("expiry-after").checked = true;
        summarize(form);
      });
      summarize(form);
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var value = document.getElementById(button.dataset.copy).textContent;
    navigator.clipboard.writeText(value).then(
      function () { button.textContent = "Copied"; },
      function () { button.textContent = "Select and copy it by hand"; });
  });
})();
