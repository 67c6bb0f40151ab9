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

// The live layer of chat: unread badges, online dots, reading, @-mentions, marking the new.
(function () {
  "use strict";

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }

  // Unread counts: #unread-state (re-fetched by htmx when messages arrive) says them; every
  // badge on the page follows it, including badges inside fragments pushed since.
  function applyUnread() {
    var state = document.getElementById("unread-state");
    if (!state) return;
    var counts = {};
    (state.dataset.counts || "").trim().split(/\s+/).forEach(function (pair) {
      var parts = pair.split(":");
      if (parts.length === 2) counts[parts[0]] = parseInt(parts[1], 10);
    });
    document.querySelectorAll("[data-unread-room]").forEach(function (badge) {
      var n = counts[badge.dataset.unreadRoom] || 0;
      badge.textContent = n ? String(n) : "";
      badge.hidden = !n;
    });
    var total = parseInt(state.dataset.total || "0", 10);
    document.querySelectorAll("[data-unread-total]").forEach(function (badge) {
      badge.textContent = total ? String(total) : "";
      badge.hidden = !total;
    });
  }

  // Online dots: the page starts with who is online (body[data-online]) and follows the
  // signals pushed when someone opens their first page or closes their last.
  var online = new Set((document.body.dataset.online || "").split(" ").filter(Boolean));
  function applyPresence() {
    document.querySelectorAll("[data-presence-signal]").forEach(function (signal) {
      if (signal.dataset.online === "1") online.add(signal.dataset.presenceSignal);
      else online.delete(signal.dataset.presenceSignal);
      signal.remove();
    });
    document.querySelectorAll("[data-presence]").forEach(function (dot) {
      var on = online.has(dot.dataset.presence);
      dot.classList.toggle("is-online", on);
    });
  }

  // Reading: tell the server, in batches, how far this page has shown the room while visible.
  var reported = 0, readTimer = null;
  function reportRead() {
    var list = document.querySelector("#messages[data-read-url]");
    if (!list || document.visibilityState !== "visible") return;
    var last = list.querySelector(".message:last-of-type");
    var id = last ? parseInt(last.id.replace("message-", ""), 10) : 0;
    if (!id || id <= reported) return;
    window.clearTimeout(readTimer);
    readTimer = window.setTimeout(function () {
      reported = Math.max(reported, id);
      var body = new URLSearchParams({ last_id: String(id) });
      fetch(list.dataset.readUrl, { method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": csrf() } });
    }, 1500);
  }
  document.addEventListener("visibilitychange", reportRead);

  // After a reconnect, messages that arrive (the replayed ones) are marked "new" for a while.
  var replaying = false, wasDown = false;
  document.addEventListener("htmx:sseError", function () { wasDown = true; });
  document.addEventListener("htmx:sseOpen", function () {
    if (!wasDown) return;
    wasDown = false;
    replaying = true;
    htmx.trigger(document.body, "lms:reconnected");
    window.setTimeout(function () { replaying = false; }, 3000);
  });
  document.addEventListener("htmx:sseMessage", function (evt) {
    if (!replaying || !evt.detail || evt.detail.type !== "message_created") return;
    var list = document.getElementById("messages");
    var last = list && list.querySelector(".message:last-of-type");
    if (last && !last.classList.contains("is-new")) {
      last.classList.add("is-new");
      last.dataset.newLabel = document.body.dataset.newLabel || "new";
    }
  });

  // @-mentions: suggestions from the room's members as the word after "@" is typed.
  var mentionTimer = null;
  function mentionWord(box) {
    var before = box.value.slice(0, box.selectionStart);
    var match = /(^|[^\w.@])@([\w.+-]{0,30})$/.exec(before);
    return match ? { query: match[2], start: before.length - match[2].length - 1 } : null;
  }
  function suggestions() { return document.getElementById("mention-suggestions"); }
  function closeSuggestions() {
    var list = suggestions();
    if (list) { list.hidden = true; list.innerHTML = ""; }
  }
  function choose(option) {
    var box = document.getElementById("id_body");
    var word = box && mentionWord(box);
    if (!word) return closeSuggestions();
    var insert = "@" + option.dataset.mention + " ";
    box.value = box.value.slice(0, word.start) + insert + box.value.slice(box.selectionStart);
    var caret = word.start + insert.length;
    box.setSelectionRange(caret, caret);
    box.focus();
    closeSuggestions();
  }
  document.addEventListener("input", function (evt) {
    var box = evt.target;
    if (!box.matches || !box.matches("textarea[data-mentions-url]")) return;
    var word = mentionWord(box);
    window.clearTimeout(mentionTimer);
    if (!word) return closeSuggestions();
    mentionTimer = window.setTimeout(function () {
      htmx.ajax("GET", box.dataset.mentionsUrl + "?q=" + encodeURIComponent(word.query),
        { target: "#mention-suggestions", swap: "innerHTML" }).then(function () {
        var list = suggestions();
        list.hidden = !list.children.length;
        var first = list.querySelector("[role=option]");
        if (first) first.setAttribute("aria-selected", "true");
      });
    }, 150);
  });
  document.addEventListener("keydown", function (evt) {
    var list = suggestions();
    if (!list || list.hidden || !evt.target.matches || !evt.target.matches("textarea[data-mentions-url]")) return;
    var options = Array.prototype.slice.call(list.querySelectorAll("[role=option]"));
    var current = options.findIndex(function (o) { return o.getAttribute("aria-selected") === "true"; });
    if (evt.key === "ArrowDown" || evt.key === "ArrowUp") {
      evt.preventDefault();
      var next = (current + (evt.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
      options.forEach(function (o, i) { o.setAttribute("aria-selected", i === next ? "true" : "false"); });
    } else if ((evt.key === "Enter" || evt.key === "Tab") && current >= 0) {
      evt.preventDefault();
      evt.stopImmediatePropagation(); // choosing a name must not send the message
      choose(options[current]);
    } else if (evt.key === "Escape") {
      closeSuggestions();
    }
  }, true);
  document.addEventListener("click", function (evt) {
    var option = evt.target.closest && evt.target.closest("#mention-suggestions [role=option]");
    if (option) choose(option);
  });
  document.addEventListener("message-sent", closeSuggestions);

  function refresh() { applyUnread(); applyPresence(); reportRead(); }
  ["htmx:afterSettle", "htmx:oobAfterSwap", "htmx:sseMessage", "htmx:afterSwap"].forEach(function (name) {
    document.addEventListener(name, refresh);
  });
  refresh();
})();
