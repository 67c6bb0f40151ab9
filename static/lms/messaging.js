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
})();
