// Knowledge base page: the drag-and-drop uploader. Each file goes up in its own XMLHttpRequest (fetch
// cannot report upload progress), with a progress bar per file. Once the server has a file, the
// document list reloads and shows its ingestion progress, which the websocket keeps live.
(function () {
  "use strict";

  function csrfToken(el) {
    var input = el.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function uploader(url) {
    return {
      items: [],
      dragging: false,
      seq: 0,

      add: function (fileList) {
        var files = Array.prototype.slice.call(fileList || []);
        for (var i = 0; i < files.length; i++) {
          this.items.unshift({ key: ++this.seq, name: files[i].name, percent: 0, state: "uploading", error: "" });
          this.send(files[i], this.items[0]); // the reactive proxy, so updates redraw
        }
      },

      send: function (file, item) {
        var xhr = new XMLHttpRequest();
        var body = new FormData();
        body.append("file", file, file.name);
        xhr.open("POST", url);
        xhr.setRequestHeader("X-CSRFToken", csrfToken(this.$root));
        xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
        xhr.upload.onprogress = function (e) {
          if (e.lengthComputable) item.percent = Math.min(99, Math.round((e.loaded * 100) / e.total));
        };
        xhr.onload = function () {
          var data = {};
          try {
            data = JSON.parse(xhr.responseText);
          } catch (err) {
            data = {};
          }
          if (xhr.status === 201) {
            item.percent = 100;
            item.state = "done";
            if (window.htmx) window.htmx.trigger(document.body, "documents-changed");
          } else {
            item.state = "error";
            item.percent = 100;
            item.error = data.error || data.detail || "The upload failed (HTTP " + xhr.status + ").";
          }
        };
        xhr.onerror = function () {
          item.state = "error";
          item.error = "The upload was interrupted. Check the connection and try again.";
        };
        xhr.send(body);
      },

      label: function (item) {
        if (item.state === "done") return "Uploaded ✓ processing below";
        if (item.state === "error") return "Not added";
        return item.percent + "%";
      },
    };
  }

  // A document that settles (ready or failed) gets its whole row redrawn (chunk count, preview link,
  // retry button) and the counts in the header follow; the socket itself only moves the progress bar.
  var SETTLED = /id="doc-(\d+)-progress"[^>]*data-status="(ready|failed)"/g;
  document.addEventListener("htmx:wsAfterMessage", function (e) {
    var message = (e.detail && e.detail.message) || "";
    var match;
    var settled = false;
    SETTLED.lastIndex = 0;
    while ((match = SETTLED.exec(message)) !== null) {
      var row = document.getElementById("doc-" + match[1]);
      if (row && window.htmx) window.htmx.trigger(row, "kb-refresh");
      settled = true;
    }
    if (settled && window.htmx) window.htmx.trigger(document.body, "kb-settled");
  });

  window.uploader = uploader;
  document.addEventListener("alpine:init", function () {
    window.Alpine.data("uploader", uploader);
  });
})();
