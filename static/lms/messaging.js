// The messaging basics of a room page: the message toolbar, reactions, day separators and
// grouping, drafts, reply focus, "Not sent · Retry", the unread total in the tab title.
(function () {
  "use strict";

  // -- The message toolbar --------------------------------------------------------------
  // Escape closes an open menu (mute) and gives the focus back to its button.
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Escape") return;
    var menu = evt.target.closest && evt.target.closest(".tool-menu[open]");
    if (menu) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });

  function say(text) {
    var status = document.getElementById("room-status");
    if (!status) return;
    status.textContent = text;
    status.hidden = false;
    window.clearTimeout(say.timer);
    say.timer = window.setTimeout(function () { status.hidden = true; }, 6000);
  }

  // Muted from a message: the menu closes and the page says so.
  document.addEventListener("member-muted", function (evt) {
    document.querySelectorAll(".tool-menu[open]").forEach(function (menu) { menu.open = false; });
    var status = document.getElementById("room-status");
    var name = (evt.detail && evt.detail.name) || "";
    if (status) say((status.dataset.muted || "%(name)s is muted.").replace("%(name)s", name));
  });

  // -- Reactions --------------------------------------------------------------------------
  // A click on an emoji (toolbar, picker or a message's reactions bar) adds the reader's
  // reaction, or takes it back if it is theirs. The new bar comes over the event stream.
  var me = document.body.dataset.user || "";
  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }
  function mine(reaction) { return (" " + reaction.dataset.users + " ").indexOf(" " + me + " ") >= 0; }
  function markMine(root) {
    (root || document).querySelectorAll(".reaction[data-users]").forEach(function (reaction) {
      reaction.setAttribute("aria-pressed", mine(reaction) ? "true" : "false");
    });
  }
  var picker = null, pickerFor = null, pickerButton = null;
  function closePicker(returnFocus) {
    if (!picker || picker.hidden) return;
    picker.hidden = true;
    if (pickerButton) {
      pickerButton.setAttribute("aria-expanded", "false");
      if (returnFocus) pickerButton.focus();
    }
    pickerFor = pickerButton = null;
  }
  function openPicker(button) {
    picker = document.getElementById("reaction-picker");
    if (!picker) return;
    pickerFor = button.closest(".message");
    pickerButton = button;
    button.setAttribute("aria-expanded", "true");
    picker.hidden = false;
    var place = button.getBoundingClientRect();
    var width = picker.offsetWidth, height = picker.offsetHeight;
    var left = Math.max(8, Math.min(place.right - width, window.innerWidth - width - 8));
    var top = place.bottom + 4 + height > window.innerHeight ? place.top - height - 4 : place.bottom + 4;
    picker.style.left = left + "px";
    picker.style.top = Math.max(8, top) + "px";
    picker.querySelector("[data-react]").focus();
  }
  function react(message, emoji) {
    var bar = message && message.querySelector(".reactions[data-url]");
    if (!bar) return;
    var existing = Array.prototype.find.call(bar.querySelectorAll(".reaction"), function (r) { return r.dataset.react === emoji; });
    var body = new URLSearchParams({ emoji: emoji, op: existing && mine(existing) ? "remove" : "add" });
    var messages = document.getElementById("reaction-picker") || document.body;
    fetch(bar.dataset.url, {
      method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": csrf(), "HX-Request": "true" },
    }).then(function (response) {
      if (response.status === 429) say(messages.dataset.slowDown || "Slow down.");
      else if (!response.ok) say(messages.dataset.failed || "Not saved.");
    }, function () { say(messages.dataset.failed || "Not saved."); });
  }
  document.addEventListener("click", function (evt) {
    var more = evt.target.closest && evt.target.closest("[data-react-more]");
    if (more) {
      var again = pickerButton === more;
      closePicker(false);
      if (!again) openPicker(more);
      return;
    }
    var choice = evt.target.closest && evt.target.closest("[data-react]");
    if (choice) {
      var inPicker = choice.closest("#reaction-picker");
      react(inPicker ? pickerFor : choice.closest(".message"), choice.dataset.react);
      if (inPicker) closePicker(true);
      return;
    }
    if (picker && !picker.hidden && !(evt.target.closest && evt.target.closest("#reaction-picker"))) closePicker(false);
  });
  document.addEventListener("keydown", function (evt) {
    if (!picker || picker.hidden || !evt.target.closest || !evt.target.closest("#reaction-picker")) return;
    var choices = Array.prototype.slice.call(picker.querySelectorAll("[data-react]"));
    var at = choices.indexOf(document.activeElement);
    var step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 5, ArrowUp: -5 }[evt.key];
    if (evt.key === "Escape") {
      evt.preventDefault();
      closePicker(true);
    } else if (step) {
      evt.preventDefault();
      choices[Math.max(0, Math.min(choices.length - 1, at + step))].focus();
    } else if (evt.key === "Tab") {
      closePicker(false);
    }
  });
  window.addEventListener("resize", function () { closePicker(false); });
  document.addEventListener("scroll", function (evt) {
    if (picker && !picker.hidden && !picker.contains(evt.target)) closePicker(false);
  }, true);
  // A bar pushed for a message this page does not show (older history): nothing to swap.
  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    var event = evt.detail;
    if (!event || event.type !== "reactions_changed") return;
    var id = /id="(reactions-\d+)"/.exec(event.data || "");
    if (!id || !document.getElementById(id[1])) evt.preventDefault();
  });

  // -- Day separators and grouping ----------------------------------------------------------
  // The list is decorated here, for the page, history pages and pushed messages alike (a pushed
  // fragment knows no previous message), in the reader's time zone: a separator before the
  // first message of each day, and a person's messages within GROUP_SECONDS of their previous
  // one are grouped under it (no repeated name and avatar).
  var GROUP_SECONDS = 5 * 60;
  var dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long" });
  var dayYearFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
  function dayStart(date) { return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime(); }
  function dayLabel(list, start) {
    var today = dayStart(new Date());
    var yesterday = dayStart(new Date(today - 12 * 3600 * 1000));
    if (start === today) return list.dataset.today || "Today";
    if (start === yesterday) return list.dataset.yesterday || "Yesterday";
    var date = new Date(start);
    return (date.getFullYear() === new Date().getFullYear() ? dayFormat : dayYearFormat).format(date);
  }
  function decorate() {
    var list = document.getElementById("messages");
    if (!list || !list.dataset.today) return;
    var scroller = document.getElementById("message-scroller");
    var wasAtEnd = scroller && scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    var previous = null, previousDay = null;
    Array.prototype.slice.call(list.children).forEach(function (el) {
      if (el.classList.contains("day-separator")) return;
      if (!el.classList.contains("message") || !el.dataset.ts) { previous = previousDay = null; return; }
      var when = new Date(parseInt(el.dataset.ts, 10) * 1000);
      var day = dayStart(when);
      var separator = el.previousElementSibling;
      if (!separator || !separator.classList.contains("day-separator")) separator = null;
      if (day !== previousDay) {
        if (!separator) {
          separator = document.createElement("li");
          separator.className = "day-separator";
          separator.appendChild(document.createElement("span"));
          list.insertBefore(separator, el);
        }
        var label = dayLabel(list, day);
        if (separator.dataset.day !== String(day) || separator.textContent !== label) {
          separator.dataset.day = String(day);
          separator.firstChild.textContent = label;
        }
      } else if (separator) {
        separator.remove();
      }
      var grouped = Boolean(previous) && day === previousDay && previous.dataset.author === el.dataset.author &&
        when - new Date(parseInt(previous.dataset.ts, 10) * 1000) <= GROUP_SECONDS * 1000 &&
        !el.querySelector(".quote") && !el.classList.contains("is-editing") && !previous.classList.contains("is-editing");
      el.classList.toggle("is-grouped", grouped);
      previous = el;
      previousDay = day;
    });
    // Separators left without their message (a history page came in above, a list reload).
    list.querySelectorAll(":scope > .day-separator").forEach(function (separator) {
      var next = separator.nextElementSibling;
      if (!next || !next.classList.contains("message")) separator.remove();
    });
    if (wasAtEnd) scroller.scrollTop = scroller.scrollHeight;
  }
  var decorating = false;
  function scheduleDecorate() {
    if (decorating) return;
    decorating = true;
    window.setTimeout(function () { decorating = false; decorate(); }, 0);
  }

  // -- Drafts --------------------------------------------------------------------------------
  // What is typed and not sent is kept per room in this browser (across room switches and
  // reloads) and forgotten once sent.
  function draftKey() {
    var list = document.getElementById("messages");
    return list && list.dataset.room ? "lms:draft:" + me + ":" + list.dataset.room : null;
  }
  function storage() { try { return window.localStorage; } catch (e) { return null; } }
  function saveDraft() {
    var box = document.getElementById("id_body"), key = draftKey(), store = storage();
    if (!box || !key || !store) return;
    try {
      if (box.value.trim()) store.setItem(key, box.value);
      else store.removeItem(key);
    } catch (e) { /* full or refused: the draft is only lost on reload */ }
  }
  function restoreDraft() {
    var box = document.getElementById("id_body"), key = draftKey(), store = storage();
    if (!box || !key || !store || box.value || box.disabled) return;
    var draft = store.getItem(key);
    if (draft) box.value = draft;
  }
  document.addEventListener("input", function (evt) {
    if (evt.target.id === "id_body") saveDraft();
  });
  document.addEventListener("message-sent", function () {
    var key = draftKey(), store = storage();
    if (key && store) store.removeItem(key);
  });

  // -- Reply, edit ---------------------------------------------------------------------------
  // Reply puts the cursor in the message box, at the end of what is there, once the composer
  // (or, after an edit, the message) it replaces is gone.
  var focusWhenGone = null;
  document.addEventListener("click", function (evt) {
    if (evt.target.closest && evt.target.closest("[data-reply], #composer .replying button")) {
      focusWhenGone = document.getElementById("composer");
    }
  }, true);
  document.addEventListener("htmx:afterSettle", function () {
    var box = document.getElementById("id_body");
    if (!focusWhenGone || !box || document.body.contains(focusWhenGone)) return;
    focusWhenGone = null;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  });
  // Escape cancels an edit (as its Cancel button does) and gives the focus back to the message box.
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Escape" || !evt.target.closest) return;
    var form = evt.target.closest(".edit-form");
    var cancel = form && form.querySelector("button[type=button][hx-get]");
    if (!cancel) return;
    evt.preventDefault();
    focusWhenGone = form.closest(".message");
    cancel.click();
  });

  // -- Not sent · Retry ----------------------------------------------------------------------
  // A send that fails (connection down, server error) says so on the composer and keeps the
  // text. Retry, the next send of the same text, or the connection coming back sends it again
  // with the same client token, so the server stores it once even if the first did arrive.
  // Changed text is a new message: it gets a new token.
  function composerForm(elt) {
    var form = elt && elt.closest && elt.closest("#composer");
    return form && elt === form ? form : null;
  }
  function newToken() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, function (c) {
      return (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16);
    });
  }
  function showNotSent(form, failed) {
    var notice = form.querySelector(".send-failed");
    if (notice) notice.hidden = !failed;
    if (failed) form.dataset.failedText = form.querySelector("textarea").value;
    else delete form.dataset.failedText;
  }
  function sendFailed(evt) {
    var form = composerForm(evt.detail && evt.detail.elt);
    if (form) showNotSent(form, true);
  }
  document.addEventListener("htmx:sendError", sendFailed);
  document.addEventListener("htmx:responseError", sendFailed);
  document.addEventListener("htmx:timeout", sendFailed);
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (form.id !== "composer" || !("failedText" in form.dataset)) return;
    var token = form.querySelector("[name=client_token]");
    if (token && form.querySelector("textarea").value !== form.dataset.failedText) token.value = newToken();
    showNotSent(form, false);
  }, true);
  document.addEventListener("click", function (evt) {
    var retry = evt.target.closest && evt.target.closest("#composer [data-retry]");
    if (retry) retry.form.requestSubmit();
  });
  document.body.addEventListener("lms:reconnected", function () {
    var form = document.getElementById("composer");
    if (form && "failedText" in form.dataset && form.querySelector("textarea").value === form.dataset.failedText) {
      form.requestSubmit();
    }
  });

  // -- Unread in the tab title ------------------------------------------------------------------
  // "(3) Chat · Course live": the total of the nav's unread badge (kept by app.js), so a tab in
  // the background says so. "Mark all as read" shows while there is something to mark.
  var baseTitle = document.title.replace(/^\(\d+\) /, "");
  function applyUnreadTotal() {
    var badge = document.querySelector("[data-unread-total]");
    if (!badge) return;
    var total = badge.hidden ? 0 : parseInt(badge.textContent, 10) || 0;
    var title = total ? "(" + total + ") " + baseTitle : baseTitle;
    if (document.title !== title) document.title = title;
    document.querySelectorAll("[data-mark-all-read]").forEach(function (form) { form.hidden = !total; });
    document.querySelectorAll("[data-rooms-unread]").forEach(function (copy) {
      copy.textContent = total ? String(total) : "";
      copy.hidden = !total;
    });
  }
  var totalBadge = document.querySelector("[data-unread-total]");
  if (totalBadge && window.MutationObserver) {
    new MutationObserver(applyUnreadTotal).observe(totalBadge, { attributes: true, childList: true, characterData: true, subtree: true });
  }
  applyUnreadTotal();

  // -- The room list on a phone -------------------------------------------------------------
  document.addEventListener("click", function (evt) {
    var toggle = evt.target.closest && evt.target.closest("[data-rooms-toggle]");
    var layout = toggle && toggle.closest(".chat-layout");
    if (!layout) return;
    var open = layout.classList.toggle("rooms-open");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      var sidebar = document.getElementById(toggle.getAttribute("aria-controls"));
      var current = sidebar && (sidebar.querySelector("[aria-current=page]") || sidebar.querySelector("a"));
      sidebar.scrollIntoView({ block: "start" });
      if (current) current.focus({ preventScroll: true });
    }
  });

  // -- After every change of the page ------------------------------------------------------
  function refresh(evt) {
    markMine(evt && evt.detail && evt.detail.elt && evt.detail.elt.querySelectorAll ? evt.detail.elt : document);
    scheduleDecorate();
  }
  ["htmx:load", "htmx:oobAfterSwap", "htmx:afterSettle"].forEach(function (name) { document.addEventListener(name, refresh); });
  markMine(document);
  decorate();
  restoreDraft();
})();
