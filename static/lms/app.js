// Small behaviours htmx attributes can't express (the CSP allows no inline script or eval).
(function () {
  "use strict";

  // Times, in the site's one set of formats (lms/accounts/dates.py writes the same on pages):
  // "20:42", "today 20:42", "yesterday", "Monday 20:42", "Dec 1, 20:42", "Dec 1, 2025, 20:42",
  // in the user's time zone (body[data-timezone], else the browser's) and the page's language.
  // Pushed fragments carry UTC; this writes them for the reader.
  var lang = document.documentElement.lang || undefined;
  var zone = document.body.dataset.timezone || undefined;
  function formatter(options) {
    try { return new Intl.DateTimeFormat(lang, Object.assign({ timeZone: zone }, options)); }
    catch (e) { zone = undefined; return new Intl.DateTimeFormat(lang, options); }
  }
  var clockFormat = formatter({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  var dayFormat = formatter({ month: "short", day: "numeric" });
  var yearDayFormat = formatter({ month: "short", day: "numeric", year: "numeric" });
  var weekdayFormat = formatter({ weekday: "long" });
  var partsFormat = formatter({ year: "numeric", month: "numeric", day: "numeric" });
  var relativeDays = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(lang, { numeric: "auto" }) : null;
  function dayNumber(when) {  // days since 1970 of the calendar day `when` falls on in the zone
    var p = {};
    partsFormat.formatToParts(when).forEach(function (part) { p[part.type] = parseInt(part.value, 10); });
    return { day: Date.UTC(p.year, p.month - 1, p.day) / 86400000, year: p.year };
  }
  function formatWhen(when, style) {
    var clock = clockFormat.format(when);
    if (style === "time") return clock;
    var day = dayNumber(when), today = dayNumber(new Date()), delta = day.day - today.day, word = "";
    if (Math.abs(delta) <= 1 && relativeDays) word = relativeDays.format(delta, "day");
    else if (Math.abs(delta) < 7) word = weekdayFormat.format(when);
    var date = word || (day.year === today.year ? dayFormat : yearDayFormat).format(when);
    if (style === "short") return delta === 0 ? clock : date;
    if (style === "date") return date;
    return word ? word + " " + clock : date + ", " + clock;
  }
  function fullWhen(when) {
    return weekdayFormat.format(when) + ", " + yearDayFormat.format(when) + ", " + clockFormat.format(when);
  }
  function localTimes(root) {
    if (!root.querySelectorAll) return;
    var found = Array.prototype.slice.call(root.querySelectorAll("time[data-local]"));
    if (root.matches && root.matches("time[data-local]")) found.push(root);
    found.forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.textContent = formatWhen(when, el.dataset.local);
      el.title = fullWhen(when);
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

  // Unread counts. The page starts from #unread-state: the counts per room, and `upto`, the
  // newest message they include. It counts by itself each message by someone else that a
  // chat home line announces (room_summary), and takes the counts the server pushes when this
  // user reads a room, in any tab (unread_changed swaps #unread-state). No request per message.
  var me = document.body.dataset.user || "";
  var unread = { counts: {}, upto: 0 }, unreadEl = null;
  var counted = {};   // room -> newest message id counted
  var recent = [];    // the latest announcements, counted again over a pushed state older than them

  function readUnreadState() {
    var state = document.getElementById("unread-state");
    if (!state || state === unreadEl) return;
    unreadEl = state;
    var counts = {};
    (state.dataset.counts || "").trim().split(/\s+/).forEach(function (pair) {
      var parts = pair.split(":");
      if (parts.length === 2) counts[parts[0]] = parseInt(parts[1], 10);
    });
    unread = { counts: counts, upto: parseInt(state.dataset.upto || "0", 10) };
    counted = {};
    recent.forEach(countMessage);
  }

  function readingNow(room) {
    var list = document.querySelector("#messages[data-read-url]");
    return Boolean(list) && list.dataset.room === room && document.visibilityState === "visible";
  }

  function countMessage(said) {
    if (said.author === me || said.id <= unread.upto || said.id <= (counted[said.room] || 0)) return;
    counted[said.room] = said.id;
    if (readingNow(said.room)) return; // the read report covers it
    unread.counts[said.room] = (unread.counts[said.room] || 0) + 1;
  }

  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    var event = evt.detail;
    if (evt.defaultPrevented || !event || event.type !== "room_summary") return;
    var html = event.data || "";
    var room = /id="room-summary-(\d+)"/.exec(html);
    var last = /data-last="(\d+)"/.exec(html);
    var author = /data-last-author="(\d+)"/.exec(html);
    if (room && last) {
      readUnreadState();
      var said = { room: room[1], id: parseInt(last[1], 10), author: author ? author[1] : "" };
      recent.push(said);
      if (recent.length > 200) recent.shift();
      countMessage(said);
    }
    // A line for a room this page does not list: nothing to swap.
    if (room && !document.getElementById("room-summary-" + room[1])) evt.preventDefault();
  });

  function applyUnread() {
    readUnreadState();
    var total = 0;
    Object.keys(unread.counts).forEach(function (room) { total += unread.counts[room]; });
    document.querySelectorAll("[data-unread-room]").forEach(function (badge) {
      var n = unread.counts[badge.dataset.unreadRoom] || 0;
      badge.textContent = n ? String(n) : "";
      badge.hidden = !n;
    });
    document.querySelectorAll("[data-unread-total]").forEach(function (badge) {
      badge.textContent = total ? String(total) : "";
      badge.hidden = !total;
    });
  }

  // Online dots: the page starts with who is online (body[data-online]) and follows the
  // signals pushed when people open their first page or close their last.
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

  // Reading: tell the server how far this page has shown the room while it is visible. One
  // report at most every READ_REPORT_MS while messages arrive, and one that long after the
  // last, whatever else the page receives meanwhile. (bench/ mirrors this timing.)
  var READ_REPORT_MS = 2000;
  function newestShown(list) {
    var last = list.querySelector(".message:last-of-type");
    return last ? parseInt(last.id.replace("message-", ""), 10) || 0 : 0;
  }
  var readList = document.querySelector("#messages[data-read-url]");
  var reported = readList ? newestShown(readList) : 0; // opening the room read it
  var readTimer = null;
  function reportRead() {
    if (readTimer) return;
    var list = document.querySelector("#messages[data-read-url]");
    if (!list || document.visibilityState !== "visible" || newestShown(list) <= reported) return;
    readTimer = window.setTimeout(function () {
      readTimer = null;
      var list = document.querySelector("#messages[data-read-url]");
      if (!list || document.visibilityState !== "visible") return;
      var id = newestShown(list);
      if (id <= reported) return;
      reported = id;
      var body = new URLSearchParams({ last_id: String(id) });
      fetch(list.dataset.readUrl, { method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": csrf() } });
    }, READ_REPORT_MS);
  }
  document.addEventListener("visibilitychange", reportRead);

  // Regions re-fetched when events arrive (data-refresh-on="event ..." and
  // hx-trigger="lms:refresh"), coalesced: one request at most every data-refresh-ms
  // (3000 by default) while the events come, and one after the last.
  var refreshes = {};
  document.addEventListener("htmx:sseMessage", function (evt) {
    var type = evt.detail && evt.detail.type;
    if (!type) return;
    document.querySelectorAll("[data-refresh-on]").forEach(function (el) {
      if (!el.id || el.dataset.refreshOn.split(/\s+/).indexOf(type) < 0) return;
      var due = refreshes[el.id] || (refreshes[el.id] = { last: 0, timer: null });
      if (due.timer) return;
      var wait = Math.max(0, due.last + parseInt(el.dataset.refreshMs || "3000", 10) - Date.now());
      due.timer = window.setTimeout(function () {
        due.timer = null;
        due.last = Date.now();
        var current = document.getElementById(el.id);
        if (current) htmx.trigger(current, "lms:refresh");
      }, wait);
    });
  });

  // After a reconnect, every message newer than the newest shown before the drop is marked
  // "new": those replayed one by one and those of a list reloaded after a gap too old to replay.
  var replaying = false, wasDown = false, shownBeforeDrop = 0;
  document.addEventListener("htmx:sseError", function () {
    var list = document.getElementById("messages");
    if (!wasDown) shownBeforeDrop = list ? newestShown(list) : 0;
    wasDown = true;
  });
  document.addEventListener("htmx:sseOpen", function () {
    if (!wasDown) return;
    wasDown = false;
    htmx.trigger(document.body, "lms:reconnected");
    keepMarking();
  });
  // The marking lasts until the replay is over: 3 s after the last message it brought.
  var replayTimer = null;
  function keepMarking() {
    replaying = true;
    window.clearTimeout(replayTimer);
    replayTimer = window.setTimeout(function () { replaying = false; }, 3000);
  }
  // A gap too old to replay reloads the list: however long that takes, its messages are marked.
  var reloadPending = false;
  document.addEventListener("lms:stream-reset", function () {
    if (wasDown || replaying) reloadPending = true;
  });
  var missedUpTo = 0; // the newest message the replay or reload brought: older pages loaded later are marked up to it
  function markReplayed() {
    var list = document.getElementById("messages");
    if (!list) return;
    var marking = replaying || reloadPending;
    if (marking) keepMarking();
    list.querySelectorAll(".message:not(.is-new)").forEach(function (message) {
      var id = parseInt(message.id.replace("message-", ""), 10) || 0;
      if (id <= shownBeforeDrop || !(marking || id <= missedUpTo)) return;
      missedUpTo = Math.max(missedUpTo, id);
      message.classList.add("is-new");
      message.dataset.newLabel = document.body.dataset.newLabel || "new";
    });
  }
  document.addEventListener("htmx:sseMessage", function (evt) {
    if (evt.detail && evt.detail.type === "message_created") markReplayed();
  });
  document.addEventListener("htmx:load", function (evt) {
    // An older page of the list, loaded as the reader scrolls up, may hold missed messages too.
    var elt = evt.detail && evt.detail.elt;
    if (missedUpTo && elt && elt.closest && elt.closest("#messages")) markReplayed();
  });
  document.addEventListener("htmx:afterSwap", function (evt) {
    var target = evt.detail && evt.detail.target;
    if (target && target.id === "messages") {
      markReplayed();
      reloadPending = false;
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
