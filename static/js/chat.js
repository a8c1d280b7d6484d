// Chat page helpers: Enter sends, the log follows new text, and events a reconnecting socket
// replays are never drawn twice (each fragment carries its sequence number in data-seq).
(function () {
  "use strict";

  function follow() {
    var log = document.getElementById("chat-log");
    if (!log || log.dataset.follow) return;
    log.dataset.follow = "1";
    var stick = true;
    log.scrollTop = log.scrollHeight;
    log.addEventListener("scroll", function () {
      stick = log.scrollHeight - log.scrollTop - log.clientHeight < 120;
    });
    new MutationObserver(function () {
      if (stick) log.scrollTop = log.scrollHeight;
    }).observe(log, { childList: true, subtree: true, characterData: true });
  }

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.key !== "Enter" || e.shiftKey || e.isComposing) return;
    if (!(t instanceof HTMLTextAreaElement) || !t.hasAttribute("data-enter-submits")) return;
    e.preventDefault();
    if (t.value.trim()) t.form.requestSubmit();
  });

  document.addEventListener("htmx:wsBeforeMessage", function (e) {
    var match = /data-seq="(\d+)"/.exec(e.detail.message || "");
    if (!match) return;
    var elt = e.target;
    var seq = parseInt(match[1], 10);
    var last = parseInt(elt.dataset.lastSeq || elt.dataset.after || "0", 10);
    if (seq <= last) {
      e.preventDefault();
      return;
    }
    elt.dataset.lastSeq = String(seq);
  });

  document.addEventListener("DOMContentLoaded", follow);
  document.addEventListener("htmx:afterSettle", follow);
})();
