// Q&A and polls: the per-viewer touches that shared, pushed fragments cannot carry.
// The server knows them too (it enforces one vote per member); this only shows them.
(function () {
  "use strict";

  function panel() { return document.querySelector(".qa-panel"); }
  function ids(value) { return new Set((value || "").split(" ").filter(Boolean)); }

  var myVotes = new Set(), myQuestions = new Set(), myPollVotes = {};

  function load() {
    var el = panel();
    if (!el) return;
    myVotes = ids(el.dataset.myVotes);
    myQuestions = ids(el.dataset.myQuestions);
    try { myPollVotes = JSON.parse(el.dataset.myPollVotes || "{}"); } catch (e) { myPollVotes = {}; }
  }

  // The instructors' queue: tabs show the open, the answered or the dismissed questions. The
  // choice is kept on the region, which pushed lists fill again; the tabs follow it.
  function syncTabs() {
    document.querySelectorAll(".queue-region").forEach(function (region) {
      var show = region.dataset.show || "open";
      region.querySelectorAll(".queue-tab").forEach(function (tab) {
        tab.setAttribute("aria-pressed", tab.dataset.show === show ? "true" : "false");
      });
    });
  }
  document.addEventListener("click", function (evt) {
    var tab = evt.target.closest && evt.target.closest(".queue-tab");
    if (!tab) return;
    var region = tab.closest(".queue-region");
    if (region) region.dataset.show = tab.dataset.show;
    syncTabs();
  });

  function apply() {
    syncTabs();
    document.querySelectorAll(".qa-panel .question[data-question]").forEach(function (item) {
      var id = item.dataset.question;
      item.classList.toggle("is-mine", myQuestions.has(id));
      var button = item.querySelector(".upvote");
      if (button) button.setAttribute("aria-pressed", myVotes.has(id) ? "true" : "false");
    });
    document.querySelectorAll(".qa-panel .poll[data-poll]").forEach(function (poll) {
      var chosen = String(myPollVotes[poll.dataset.poll] || "");
      poll.querySelectorAll(".poll-option").forEach(function (option) {
        var mine = option.dataset.option === chosen;
        option.classList.toggle("is-chosen", mine);
        var button = option.querySelector(".poll-choice");
        if (button) button.setAttribute("aria-pressed", mine ? "true" : "false");
      });
    });
  }

  // An upvote button adds or takes back the vote depending on how it is shown now.
  document.addEventListener("htmx:configRequest", function (evt) {
    var button = evt.detail.elt;
    if (button.classList && button.classList.contains("upvote")) {
      evt.detail.parameters.vote = button.getAttribute("aria-pressed") === "true" ? "remove" : "add";
    }
  });
  document.addEventListener("vote-changed", function (evt) {
    var id = String(evt.detail.question);
    if (evt.detail.voted) myVotes.add(id); else myVotes.delete(id);
    apply();
  });
  document.addEventListener("poll-voted", function (evt) {
    myPollVotes[evt.detail.poll] = evt.detail.option;
    apply();
  });
  document.addEventListener("question-asked", function (evt) {
    myQuestions.add(String(evt.detail.question));
    var form = document.getElementById("ask-form");
    if (form) {
      form.reset();
      form.querySelectorAll(".form-error").forEach(function (el) { el.remove(); });
      var token = form.querySelector("[name=client_token]");
      if (token && window.crypto && crypto.randomUUID) token.value = crypto.randomUUID();
    }
    apply();
  });
  document.addEventListener("poll-created", function () {
    var form = document.getElementById("poll-form");
    if (form) form.reset();
  });
  ["htmx:afterSettle", "htmx:oobAfterSwap", "htmx:sseMessage"].forEach(function (name) {
    document.addEventListener(name, apply);
  });

  load();
  apply();
})();
