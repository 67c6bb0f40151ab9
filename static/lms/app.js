// Small behaviours htmx attributes can't express (the CSP allows no inline script or eval).
(function () {
  "use strict";

  // Times: the server writes UTC (a pushed fragment has no reader); show the reader's time.
  var timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  var dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      var sameDay = when.toDateString() === new Date().toDateString();
      el.textContent = (el.dataset.local === "time" && sameDay ? timeFormat : dateTimeFormat).format(when);
      el.title = dateTimeFormat.format(when);
    });
  }

  // Message boxes: Enter sends, Shift+Enter breaks the line (and IME composition is left alone).
  document.addEventListener("keydown", function (evt) {
    var box = evt.target;
    if (evt.key !== "Enter" || evt.shiftKey || evt.isComposing || !box.matches("textarea[data-enter-sends]")) return;
    evt.preventDefault();
    if (box.value.trim() && box.form) box.form.requestSubmit();
  });

  function newToken() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, function (c) {
      return (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16);
    });
  }

  // After a post is stored the message arrives over the event stream; the form just resets.
  document.addEventListener("message-sent", function () {
    var form = document.getElementById("composer");
    if (!form) return;
    var box = form.querySelector("textarea");
    box.value = "";
    form.querySelectorAll(".form-error, .replying").forEach(function (el) { el.remove(); });
    box.removeAttribute("aria-invalid");
    var token = form.querySelector("[name=client_token]");
    if (token) token.value = newToken();
    box.focus();
    scrollToEnd(true);
  });

  // The message list stays at its end while the reader is there.
  function scroller() { return document.getElementById("message-scroller"); }
  function atEnd(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 80; }
  var follow = true;
  function scrollToEnd(force) {
    var el = scroller();
    if (el && (force || follow)) el.scrollTop = el.scrollHeight;
  }
  document.addEventListener("scroll", function (evt) {
    if (evt.target === scroller()) follow = atEnd(evt.target);
  }, true);

  // A quoted message: jump to it when it is on the page, else follow the link to it.
  document.addEventListener("click", function (evt) {
    var link = evt.target.closest && evt.target.closest("a[data-jump]");
    if (!link) return;
    var target = document.getElementById(link.dataset.jump);
    if (!target) return;
    evt.preventDefault();
    highlight(target);
  });
  function highlight(el) {
    el.scrollIntoView({ block: "center" });
    el.classList.add("is-highlighted");
    el.setAttribute("tabindex", "-1");
    el.focus({ preventScroll: true });
    window.setTimeout(function () { el.classList.remove("is-highlighted"); }, 2500);
  }

  document.addEventListener("htmx:load", function (evt) { localTimes(evt.detail.elt); });
  document.addEventListener("htmx:sseMessage", function () { scrollToEnd(false); });
  // This deferred script runs once the page is parsed and before htmx starts, so the list
  // is already at its end when htmx watches the top of it for "load older messages".
  localTimes(document);
  var hash = window.location.hash.slice(1);
  var target = hash && document.getElementById(hash);
  if (target && target.classList.contains("message")) {
    follow = false;
    highlight(target);
  } else {
    scrollToEnd(true);
  }
})();
