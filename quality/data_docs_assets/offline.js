/* krakenflow: Data Docs offline. GX pages load jQuery, Bootstrap and bootstrap-table from CDNs; quality/data_docs.py
   strips those tags and inlines this file instead: the few calls the pages make, in plain DOM code.
   - $(sel).bootstrapTable({columns, data}) draws a plain table (first cell links to _table_row_link_path);
   - fadeIn/fadeOut/parent/each/removeClass for the "show only failed" buttons and the footer;
   - modal/on are no-ops (the GX walkthrough pop-up and bootstrap events need no behaviour offline);
   - data-toggle="collapse" and "tab" links toggle their target. */
(function () {
  function Wrapped(nodes) { this.nodes = nodes.filter(Boolean); }
  Wrapped.prototype.each = function (fn) { this.nodes.forEach(function (n, i) { fn.call(n, i, n); }); return this; };
  Wrapped.prototype.parent = function () { return new Wrapped(this.nodes.map(function (n) { return n.parentElement; })); };
  Wrapped.prototype.fadeIn = function () { return this.each(function (i, n) { n.style.display = ""; }); };
  Wrapped.prototype.fadeOut = function () { return this.each(function (i, n) { n.style.display = "none"; }); };
  Wrapped.prototype.removeClass = function (c) { return this.each(function (i, n) { n.classList.remove(c); }); };
  Wrapped.prototype.on = function () { return this; };
  Wrapped.prototype.modal = function () { return this; };
  Wrapped.prototype.data = function (key) { return this.nodes.length ? this.nodes[0].dataset[key] : undefined; };
  Wrapped.prototype.ready = function (fn) {
    if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", fn); } else { fn(); }
    return this;
  };
  Wrapped.prototype.bootstrapTable = function (options) {
    if (typeof options !== "object") { return this; }
    return this.each(function (i, table) { drawTable(table, options); });
  };
  function drawTable(table, options) {
    var head = table.createTHead().insertRow();
    options.columns.forEach(function (col) {
      var th = document.createElement("th");
      th.textContent = col.title;
      head.appendChild(th);
    });
    var body = table.createTBody();
    options.data.forEach(function (row) {
      var tr = body.insertRow();
      options.columns.forEach(function (col, k) {
        var td = tr.insertCell();
        td.innerHTML = row[col.field] === undefined ? "" : String(row[col.field]);
        if (k === 0 && row._table_row_link_path) {
          var a = document.createElement("a");
          a.href = row._table_row_link_path;
          while (td.firstChild) { a.appendChild(td.firstChild); }
          if (!a.textContent.trim()) { a.appendChild(document.createTextNode("open")); }
          td.appendChild(a);
        }
      });
      if (row._table_row_link_path) {
        tr.className = "clickable-row";
        tr.addEventListener("click", function () { window.location = row._table_row_link_path; });
      }
    });
    table.classList.add("table", "table-bordered");
  }
  window.$ = window.jQuery = function (selector) {
    if (typeof selector === "string") { return new Wrapped(Array.prototype.slice.call(document.querySelectorAll(selector))); }
    return new Wrapped([selector]);
  };
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest('[data-toggle="collapse"], [data-toggle="tab"]') : null;
    if (!link) { return; }
    var target = document.querySelector(link.getAttribute("data-target") || link.getAttribute("href"));
    if (!target) { return; }
    event.preventDefault();
    if (link.getAttribute("data-toggle") === "collapse") { target.classList.toggle("show"); return; }
    Array.prototype.forEach.call(target.parentElement.children, function (pane) { pane.classList.remove("active", "show"); });
    target.classList.add("active", "show");
    Array.prototype.forEach.call(link.closest(".nav").querySelectorAll("[data-toggle]"), function (l) { l.classList.remove("active"); });
    link.classList.add("active");
  });
})();
