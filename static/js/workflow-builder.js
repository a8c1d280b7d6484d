// The workflow builder: a Drawflow canvas over our graph JSON.
//
// The page hands us {catalog, graph, urls, readOnly} in #wf-builder-config. We keep each node's JSON
// (id, type, name, config, retry, timeout) here, and let Drawflow keep positions and connections;
// toGraph() turns Drawflow's export back into {nodes, edges} with our node ids and port names
// (Drawflow numbers outputs output_1..n; the catalog tells which port each one is).
// The side panel is an htmx form the server renders per node type; applying it fires `wf-node-saved`
// with the node's clean JSON. Save, validate, publish and test run post the graph as JSON; errors come
// back per node and the canvas marks those nodes. A test run streams its events over
// /ws/workflow-runs/<id>/?format=json and lights the nodes up as they run.
(function () {
  "use strict";

  var STATES = ["running", "retry", "succeeded", "waiting", "failed", "cancelled", "skipped"];
  var EVENT_STATES = {
    step_started: "running",
    step_retry: "retry",
    step_succeeded: "succeeded",
    step_waiting: "waiting",
    step_failed: "failed",
    step_cancelled: "cancelled",
  };

  function esc(text) {
    var div = document.createElement("div");
    div.textContent = text == null ? "" : String(text);
    return div.innerHTML;
  }

  function clone(value) {
    return JSON.parse(JSON.stringify(value));
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (e) {
      return "";
    }
  }

  function Builder(container, cfg) {
    this.container = container;
    this.cfg = cfg;
    this.urls = cfg.urls || {};
    this.readOnly = !!cfg.readOnly;
    this.catalog = {};
    var self = this;
    cfg.catalog.forEach(function (t) {
      self.catalog[t.type] = t;
    });
    this.nodes = {}; // our id -> node JSON without its position
    this.dfToId = {};
    this.idToDf = {};
    this.dfPorts = {};
    this.panelDirty = false;
    this.run = null;

    var editor = new window.Drawflow(container);
    editor.reroute = false;
    editor.start();
    editor.editor_mode = this.readOnly ? "view" : "edit";
    this.editor = editor;
    if (this.readOnly) container.classList.add("wf-readonly");

    this.load(cfg.graph || { nodes: [], edges: [] });
    this.saved = JSON.stringify(this.toGraph());
    this.zoomControls();
    this.fitIfNeeded();
    this.bind();
  }

  Builder.prototype.portsOf = function (node) {
    var t = this.catalog[node.type];
    var ports = t.ports.slice();
    if (t.dynamic_ports) {
      var values = (node.config || {})[t.dynamic_ports] || [];
      ports = values
        .filter(function (v) {
          return typeof v === "string" || typeof v === "number";
        })
        .map(String)
        .concat(ports);
    }
    if (t.error_port && ports.indexOf("error") < 0) ports.push("error");
    return ports;
  };

  Builder.prototype.nodeHtml = function (node) {
    var t = this.catalog[node.type];
    return (
      '<div class="wf-node-body">' +
      '<div class="wf-node-head"><span aria-hidden="true">' + esc(t.icon) + "</span>" +
      '<span class="wf-node-name">' + esc(node.name || t.label) + "</span>" +
      '<span class="wf-node-state"></span></div>' +
      '<div class="wf-node-meta">' + esc(t.label) + " · " + esc(node.id) + "</div>" +
      '<ul class="wf-node-errors"></ul></div>'
    );
  };

  // ------------------------------------------------------------ graph <-> Drawflow

  // Graphs made over the API may carry no positions (or all the same one): lay them out in columns
  // by distance from the triggers, so the canvas is readable.
  function layout(graph) {
    var nodes = graph.nodes || [];
    var seen = {};
    var distinct = nodes.filter(function (n) {
      if (!n.position) return false;
      var key = n.position.x + "," + n.position.y;
      if (seen[key]) return false;
      seen[key] = true;
      return true;
    }).length;
    if (distinct === nodes.length) return graph;
    var next = {};
    (graph.edges || []).forEach(function (e) {
      (next[e.source] = next[e.source] || []).push(e.target);
    });
    var depth = {};
    var queue = nodes.filter(function (n) {
      return n.type === "trigger";
    }).map(function (n) {
      depth[n.id] = 0;
      return n.id;
    });
    while (queue.length) {
      var id = queue.shift();
      (next[id] || []).forEach(function (target) {
        if (depth[target] === undefined) {
          depth[target] = depth[id] + 1;
          queue.push(target);
        }
      });
    }
    var rows = {};
    var out = clone(graph);
    out.nodes.forEach(function (n) {
      var d = depth[n.id] === undefined ? 0 : depth[n.id];
      rows[d] = (rows[d] || 0) + 1;
      n.position = { x: 40 + d * 270, y: 40 + (rows[d] - 1) * 130 };
    });
    return out;
  }

  Builder.prototype.load = function (graph) {
    var self = this;
    graph = layout(graph);
    this.nodes = {};
    this.dfToId = {};
    this.idToDf = {};
    this.dfPorts = {};
    var data = {};
    (graph.nodes || []).forEach(function (n, index) {
      if (!self.catalog[n.type]) return;
      var dfId = index + 1;
      var node = clone(n);
      var pos = node.position || { x: 40 + (index % 4) * 230, y: 60 + Math.floor(index / 4) * 160 };
      delete node.position;
      self.nodes[node.id] = node;
      self.dfToId[dfId] = node.id;
      self.idToDf[node.id] = dfId;
      var ports = self.portsOf(node);
      self.dfPorts[dfId] = ports;
      var inputs = {};
      if (self.catalog[node.type].inputs) inputs.input_1 = { connections: [] };
      var outputs = {};
      ports.forEach(function (_p, i) {
        outputs["output_" + (i + 1)] = { connections: [] };
      });
      data[dfId] = {
        id: dfId,
        name: node.type,
        data: { nid: node.id },
        class: "wf-node",
        html: self.nodeHtml(node),
        typenode: false,
        inputs: inputs,
        outputs: outputs,
        pos_x: Number(pos.x) || 0,
        pos_y: Number(pos.y) || 0,
      };
    });
    (graph.edges || []).forEach(function (e) {
      var src = self.idToDf[e.source];
      var dst = self.idToDf[e.target];
      if (!src || !dst || !data[dst].inputs.input_1) return;
      var index = self.dfPorts[src].indexOf(e.port || "out");
      if (index < 0) return; // a port that no longer exists (a removed router label)
      var output = "output_" + (index + 1);
      data[src].outputs[output].connections.push({ node: String(dst), output: "input_1" });
      data[dst].inputs.input_1.connections.push({ node: String(src), input: output });
    });
    this.editor.import({ drawflow: { Home: { data: data } } });
    Object.keys(data).forEach(function (dfId) {
      self.decorate(dfId);
    });
  };

  // Zoom out (never in) and scroll so every step is on screen.
  Builder.prototype.fit = function () {
    var editor = this.editor;
    var els = this.container.querySelectorAll(".drawflow-node");
    if (!els.length) return;
    var minX = Infinity;
    var minY = Infinity;
    var maxX = -Infinity;
    var maxY = -Infinity;
    els.forEach(function (el) {
      minX = Math.min(minX, el.offsetLeft);
      minY = Math.min(minY, el.offsetTop);
      maxX = Math.max(maxX, el.offsetLeft + el.offsetWidth + 70); // room for the port labels
      maxY = Math.max(maxY, el.offsetTop + el.offsetHeight);
    });
    var margin = 24;
    var width = this.container.clientWidth;
    var height = this.container.clientHeight;
    var zoom = Math.min(1, (width - 2 * margin) / (maxX - minX), (height - 2 * margin) / (maxY - minY));
    zoom = Math.max(editor.zoom_min, zoom);
    var cx = editor.precanvas.clientWidth / 2;
    var cy = editor.precanvas.clientHeight / 2;
    editor.zoom = zoom;
    editor.zoom_last_value = zoom;
    editor.canvas_x = margin - cx - (minX - cx) * zoom;
    editor.canvas_y = margin - cy - (minY - cy) * zoom;
    editor.precanvas.style.transform = "translate(" + editor.canvas_x + "px, " + editor.canvas_y + "px) scale(" + zoom + ")";
  };

  // Only when something is off screen: a graph that fits stays where its positions put it.
  Builder.prototype.fitIfNeeded = function () {
    var width = this.container.clientWidth;
    var height = this.container.clientHeight;
    var off = false;
    this.container.querySelectorAll(".drawflow-node").forEach(function (el) {
      if (el.offsetLeft < 0 || el.offsetTop < 0 || el.offsetLeft + el.offsetWidth + 60 > width || el.offsetTop + el.offsetHeight > height) {
        off = true;
      }
    });
    if (off) this.fit();
  };

  Builder.prototype.zoomControls = function () {
    var self = this;
    var box = document.createElement("div");
    box.className = "wf-zoom";
    [
      ["−", "Zoom out", function () {
        self.editor.zoom_out();
      }],
      ["+", "Zoom in", function () {
        self.editor.zoom_in();
      }],
      ["⤢", "Fit every step on screen", function () {
        self.fit();
      }],
    ].forEach(function (spec) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = spec[0];
      button.title = spec[1];
      button.setAttribute("aria-label", spec[1]);
      button.addEventListener("mousedown", function (e) {
        e.stopPropagation(); // not a click on the canvas (Drawflow would start panning)
      });
      button.addEventListener("click", spec[2]);
      box.appendChild(button);
    });
    this.container.appendChild(box);
  };

  Builder.prototype.toGraph = function () {
    var self = this;
    var data = this.editor.export().drawflow.Home.data;
    var nodes = [];
    var edges = [];
    Object.keys(data)
      .map(Number)
      .sort(function (a, b) {
        return a - b;
      })
      .forEach(function (dfId) {
        var d = data[dfId];
        var id = self.dfToId[dfId];
        if (!id) return;
        var node = clone(self.nodes[id]);
        node.position = { x: Math.round(d.pos_x), y: Math.round(d.pos_y) };
        nodes.push(node);
        var ports = self.dfPorts[dfId];
        Object.keys(d.outputs).forEach(function (cls) {
          var port = ports[parseInt(cls.split("_")[1], 10) - 1];
          d.outputs[cls].connections.forEach(function (c) {
            var target = self.dfToId[c.node];
            if (port && target) edges.push({ source: id, target: target, port: port });
          });
        });
      });
    return { nodes: nodes, edges: edges };
  };

  Builder.prototype.element = function (nodeId) {
    var dfId = this.idToDf[nodeId];
    return dfId ? document.getElementById("node-" + dfId) : null;
  };

  Builder.prototype.decorate = function (dfId) {
    var el = document.getElementById("node-" + dfId);
    if (!el) return;
    var id = this.dfToId[dfId];
    var ports = this.dfPorts[dfId] || [];
    el.dataset.nodeId = id;
    el.dataset.nodeType = this.nodes[id].type;
    el.setAttribute("data-testid", "node-" + id);
    el.querySelectorAll(".outputs .output").forEach(function (o) {
      var k = parseInt((o.classList[1] || "output_0").split("_")[1], 10);
      var port = ports[k - 1];
      if (port) {
        o.dataset.port = port;
        o.title = "Output: " + port;
      }
    });
    var input = el.querySelector(".inputs .input");
    if (input) input.title = "Input";
  };

  Builder.prototype.uniqueId = function (type) {
    if (!this.nodes[type]) return type;
    for (var i = 2; ; i++) {
      if (!this.nodes[type + "_" + i]) return type + "_" + i;
    }
  };

  Builder.prototype.addNode = function (type, x, y) {
    var t = this.catalog[type];
    if (!t || this.readOnly) return null;
    var id = this.uniqueId(type);
    var node = { id: id, type: type, name: t.label, config: clone(t.defaults || {}) };
    this.nodes[id] = node;
    var ports = this.portsOf(node);
    var dfId = this.editor.addNode(type, t.inputs, ports.length, x, y, "wf-node", { nid: id }, this.nodeHtml(node));
    this.dfToId[dfId] = id;
    this.idToDf[id] = dfId;
    this.dfPorts[dfId] = ports;
    this.decorate(dfId);
    this.openPanel(id);
    return id;
  };

  // Where a clicked palette item lands: the first free cell of a grid, in view.
  Builder.prototype.nextSpot = function () {
    var zoom = this.editor.zoom || 1;
    var left = -this.editor.canvas_x / zoom;
    var top = -this.editor.canvas_y / zoom;
    var taken = [];
    this.container.querySelectorAll(".drawflow-node").forEach(function (el) {
      taken.push({ x: el.offsetLeft, y: el.offsetTop, w: el.offsetWidth + 70, h: el.offsetHeight + 20 });
    });
    var columns = Math.max(1, Math.floor((this.container.clientWidth / zoom - 40) / 250));
    for (var row = 0; row < 20; row++) {
      for (var col = 0; col < columns; col++) {
        var x = left + 40 + col * 250;
        var y = top + 40 + row * 130;
        var free = taken.every(function (r) {
          return x + 250 <= r.x || x >= r.x + r.w || y + 110 <= r.y || y >= r.y + r.h;
        });
        if (free) return { x: x, y: y };
      }
    }
    return { x: left + 40, y: top + 40 };
  };

  Builder.prototype.applyNode = function (originalId, node) {
    var dfId = this.idToDf[originalId];
    if (!dfId) return;
    var old = this.nodes[originalId];
    var updated = Object.assign({}, old, node, { type: old.type });
    if (!node.timeout_seconds) delete updated.timeout_seconds;
    var oldPorts = this.dfPorts[dfId].join("\n");
    delete this.nodes[originalId];
    this.nodes[updated.id] = updated;
    this.dfToId[dfId] = updated.id;
    delete this.idToDf[originalId];
    this.idToDf[updated.id] = dfId;
    this.editor.drawflow.drawflow.Home.data[dfId].data = { nid: updated.id };
    if (this.portsOf(updated).join("\n") !== oldPorts) {
      // Router labels or switch cases changed: redraw, keeping every connection whose port still exists.
      var graph = this.toGraph();
      this.load(graph);
    } else {
      var el = document.getElementById("node-" + dfId);
      var body = el && el.querySelector(".drawflow_content_node");
      if (body) body.innerHTML = this.nodeHtml(updated);
      this.editor.drawflow.drawflow.Home.data[dfId].html = this.nodeHtml(updated);
      this.decorate(dfId);
    }
    var mark = this.element(updated.id);
    if (mark) {
      mark.classList.remove("wf-node-error");
      var list = mark.querySelector(".wf-node-errors");
      if (list) list.innerHTML = "";
    }
  };

  Builder.prototype.removeNode = function (nodeId) {
    var dfId = this.idToDf[nodeId];
    if (dfId) this.editor.removeNodeId("node-" + dfId);
  };

  // ------------------------------------------------------------ panel

  Builder.prototype.panel = function () {
    return document.getElementById("wf-panel");
  };

  Builder.prototype.openPanel = function (nodeId) {
    var node = this.nodes[nodeId];
    if (!node || !this.urls.panel || !this.panel()) return;
    var shown = this.panel().querySelector("[data-node-panel]");
    if (shown && shown.dataset.nodeId === nodeId) return; // already open: keep what is being typed
    var others = Object.keys(this.nodes).filter(function (id) {
      return id !== nodeId;
    });
    this.panelDirty = false;
    window.htmx.ajax("POST", this.urls.panel, {
      target: "#wf-panel",
      swap: "innerHTML",
      values: { node: JSON.stringify(node), other_ids: others.join(",") },
      headers: { "X-CSRFToken": csrfToken() },
    });
  };

  Builder.prototype.clearPanel = function () {
    var panel = this.panel();
    if (panel) panel.innerHTML = '<p class="text-sm text-ink-muted">Select a step on the canvas to set it up.</p>';
    this.panelDirty = false;
  };

  // Apply the panel's unapplied edits before the graph leaves the page; false when they have errors.
  Builder.prototype.flushPanel = function () {
    var self = this;
    var form = this.panel() && this.panel().querySelector("form[data-node-form]");
    if (!form || !this.panelDirty || this.readOnly) return Promise.resolve(true);
    return new Promise(function (resolve) {
      form.addEventListener(
        "htmx:afterRequest",
        function () {
          resolve(!self.panelDirty);
        },
        { once: true }
      );
      window.htmx.trigger(form, "submit");
    });
  };

  // ------------------------------------------------------------ messages and errors

  // actionHtml: the server-rendered way out of a billing refusal (add credits, upgrade), never user text.
  Builder.prototype.say = function (text, kind, actionHtml) {
    var box = document.getElementById("wf-alerts");
    if (!box || !text) return;
    var div = document.createElement("div");
    div.className = "alert " + (kind === "error" ? "alert-error" : kind === "success" ? "alert-success" : "alert-info");
    div.setAttribute("role", kind === "error" ? "alert" : "status");
    var action = actionHtml ? '<span class="shrink-0" data-testid="wf-alert-action">' + actionHtml + "</span>" : "";
    div.innerHTML = "<span>" + esc(text) + "</span>" + action + '<button type="button" class="ml-auto text-sm" aria-label="Dismiss">✕</button>';
    div.querySelector("button").addEventListener("click", function () {
      div.remove();
    });
    box.innerHTML = "";
    box.appendChild(div);
  };

  Builder.prototype.clearErrors = function () {
    this.container.querySelectorAll(".wf-node-error").forEach(function (el) {
      el.classList.remove("wf-node-error");
    });
    this.container.querySelectorAll(".wf-node-errors").forEach(function (ul) {
      ul.innerHTML = "";
    });
    var list = document.getElementById("wf-graph-errors");
    if (list) list.innerHTML = "";
  };

  Builder.prototype.showErrors = function (errors) {
    var self = this;
    var list = document.getElementById("wf-graph-errors");
    Object.keys(errors).forEach(function (nodeId) {
      var messages = errors[nodeId];
      var el = nodeId === "graph" ? null : self.element(nodeId);
      if (el) {
        el.classList.add("wf-node-error");
        var ul = el.querySelector(".wf-node-errors");
        if (ul) ul.innerHTML = messages.map(function (m) {
          return "<li>" + esc(m) + "</li>";
        }).join("");
      }
      if (!list) return;
      messages.forEach(function (m) {
        var li = document.createElement("li");
        li.dataset.nodeId = nodeId;
        if (el) {
          var name = self.nodes[nodeId].name || nodeId;
          li.innerHTML = '<button type="button" class="underline">' + esc(name) + "</button>: " + esc(m);
          li.querySelector("button").addEventListener("click", function () {
            self.openPanel(nodeId);
          });
        } else {
          li.textContent = (nodeId === "graph" ? "" : nodeId + ": ") + m;
        }
        list.appendChild(li);
      });
    });
  };

  // ------------------------------------------------------------ server calls

  Builder.prototype.post = function (url, extra) {
    var self = this;
    return this.flushPanel().then(function (applied) {
      if (!applied) {
        self.say("Fix the fields marked in red in the step panel first.", "error");
        return null;
      }
      self.clearErrors();
      var graph = self.toGraph();
      var body = Object.assign({ graph: graph }, extra || {});
      return fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(body),
      }).then(function (response) {
        return response
          .json()
          .catch(function () {
            return { detail: "The server answered " + response.status + "." };
          })
          .then(function (data) {
            if (data.errors) self.showErrors(data.errors);
            self.say(data.detail, response.ok ? "success" : "error", response.ok ? null : data.action_html);
            if (response.ok && url !== self.urls.validate) self.saved = JSON.stringify(graph);
            return { ok: response.ok, data: data };
          });
      });
    });
  };

  Builder.prototype.afterSave = function (result, published) {
    if (!result || !result.ok) return;
    var info = document.getElementById("wf-version-info");
    if (info && result.data.version) {
      info.textContent = "Version " + result.data.version + (published ? " · live: v" + result.data.version : " · saved");
    }
    if (published) {
      var badge = document.getElementById("wf-status-badge");
      if (badge) badge.innerHTML = '<span class="badge">Active</span>';
    }
  };

  // ------------------------------------------------------------ test run

  Builder.prototype.clearRunStates = function () {
    this.container.querySelectorAll(".drawflow-node").forEach(function (el) {
      STATES.forEach(function (s) {
        el.classList.remove("wf-st-" + s);
      });
      delete el.dataset.runState;
      var state = el.querySelector(".wf-node-state");
      if (state) state.textContent = "";
    });
  };

  Builder.prototype.setNodeState = function (nodeId, state, payload) {
    var el = this.element(nodeId);
    if (!el) return;
    STATES.forEach(function (s) {
      el.classList.remove("wf-st-" + s);
    });
    el.classList.add("wf-st-" + state);
    el.dataset.runState = state;
    var label = el.querySelector(".wf-node-state");
    if (label) label.textContent = state === "retry" ? "retrying" : state;
    if (state === "failed" && payload && payload.error) {
      var ul = el.querySelector(".wf-node-errors");
      if (ul) ul.innerHTML = "<li>" + esc(payload.error) + "</li>";
    }
  };

  Builder.prototype.setRunStatus = function (status) {
    var badge = document.getElementById("wf-run-status");
    if (!badge) return;
    badge.textContent = status;
    badge.dataset.status = status;
    badge.className = "badge" + (status === "failed" ? " !bg-red-50 !text-red-800 !border-red-700" : status === "waiting" ? " !bg-amber-100 !text-amber-900 !border-amber-700" : "");
  };

  Builder.prototype.handleEvent = function (event) {
    var state = EVENT_STATES[event.type];
    if (state && event.node) this.setNodeState(event.node, state, event.payload || {});
    if (event.type === "run" && event.payload) this.setRunStatus(event.payload.status);
    if (event.type === "done") {
      var payload = event.payload || {};
      this.setRunStatus(payload.status);
      var out = document.getElementById("wf-run-output");
      if (out) {
        out.textContent =
          payload.output === undefined || payload.output === null
            ? "(no output)"
            : typeof payload.output === "string"
              ? payload.output
              : JSON.stringify(payload.output, null, 2);
      }
      var err = document.getElementById("wf-run-error");
      if (err && payload.error) {
        err.textContent = "⚠ " + payload.error;
        err.classList.remove("hidden");
      }
    }
  };

  Builder.prototype.watch = function (runId, after) {
    var self = this;
    var proto = window.location.protocol === "https:" ? "wss" : "ws";
    var socket = new WebSocket(proto + "://" + window.location.host + "/ws/workflow-runs/" + runId + "/?format=json&after=" + (after || 0));
    var last = after || 0;
    var finished = false;
    socket.onmessage = function (message) {
      var event = JSON.parse(message.data);
      if (event.seq <= last) return;
      last = event.seq;
      self.handleEvent(event);
      if (event.type === "done") finished = true;
    };
    socket.onclose = function () {
      if (!finished && self.run === runId) {
        window.setTimeout(function () {
          if (self.run === runId) self.watch(runId, last);
        }, 1000);
      }
    };
  };

  Builder.prototype.testRun = function () {
    var self = this;
    var input = document.getElementById("wf-test-input");
    return this.post(this.urls.testRun, { input: input ? input.value : "" }).then(function (result) {
      if (!result || !result.ok) return;
      self.afterSave(result, false);
      self.clearRunStates();
      self.run = result.data.run_id;
      var box = document.getElementById("wf-run");
      if (box) box.classList.remove("hidden");
      var link = document.getElementById("wf-run-link");
      if (link) {
        link.href = result.data.run_url;
        link.textContent = "#" + result.data.run_id;
      }
      var out = document.getElementById("wf-run-output");
      if (out) out.textContent = "…";
      var err = document.getElementById("wf-run-error");
      if (err) err.classList.add("hidden");
      self.setRunStatus(result.data.status || "pending");
      self.watch(result.data.run_id, 0);
    });
  };

  // ------------------------------------------------------------ wiring

  Builder.prototype.bind = function () {
    var self = this;
    var editor = this.editor;
    var container = this.container;

    editor.on("nodeSelected", function (dfId) {
      var id = self.dfToId[dfId];
      if (id) self.openPanel(id);
    });
    editor.on("nodeRemoved", function (dfId) {
      var id = self.dfToId[dfId];
      delete self.dfToId[dfId];
      delete self.dfPorts[dfId];
      if (id) {
        delete self.nodes[id];
        delete self.idToDf[id];
        var panel = self.panel() && self.panel().querySelector("[data-node-panel]");
        if (panel && panel.dataset.nodeId === id) self.clearPanel();
      }
    });
    editor.on("connectionCreated", function (c) {
      if (String(c.output_id) === String(c.input_id)) {
        editor.removeSingleConnection(c.output_id, c.input_id, c.output_class, c.input_class);
      }
    });
    if (this.readOnly) {
      // View mode selects nothing; still let people open a step's settings to read them.
      container.addEventListener("click", function (e) {
        var el = e.target.closest(".drawflow-node");
        if (el && el.dataset.nodeId) self.openPanel(el.dataset.nodeId);
      });
      return;
    }

    // Palette: drag onto the canvas, or click to add.
    document.querySelectorAll("[data-node-type].wf-palette-item").forEach(function (item) {
      item.addEventListener("dragstart", function (e) {
        e.dataTransfer.setData("application/x-wf-node", item.dataset.nodeType);
        e.dataTransfer.setData("text/plain", item.dataset.nodeType);
        e.dataTransfer.effectAllowed = "copy";
      });
      item.addEventListener("click", function () {
        var spot = self.nextSpot();
        self.addNode(item.dataset.nodeType, spot.x, spot.y);
      });
    });
    container.addEventListener("dragover", function (e) {
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      container.classList.add("wf-drop");
    });
    container.addEventListener("dragleave", function () {
      container.classList.remove("wf-drop");
    });
    container.addEventListener("drop", function (e) {
      e.preventDefault();
      container.classList.remove("wf-drop");
      var type = e.dataTransfer.getData("application/x-wf-node") || e.dataTransfer.getData("text/plain");
      if (!self.catalog[type]) return;
      var rect = editor.precanvas.getBoundingClientRect();
      var zoom = editor.zoom || 1;
      self.addNode(type, (e.clientX - rect.x) / zoom - 20, (e.clientY - rect.y) / zoom - 20);
    });

    // The panel: applied nodes come back as an event; edits not applied yet are tracked.
    document.body.addEventListener("wf-node-saved", function (e) {
      self.applyNode(e.detail.original_id, e.detail.node);
      self.panelDirty = false;
    });
    document.body.addEventListener("htmx:afterSwap", function (e) {
      if (e.detail.target && e.detail.target.id === "wf-panel") {
        self.panelDirty = !!e.detail.target.querySelector(".field-error, .alert-error");
      }
    });
    var panel = this.panel();
    if (panel) {
      panel.addEventListener("input", function (e) {
        if (e.target.closest("form[data-node-form]")) self.panelDirty = true;
      });
      panel.addEventListener("change", function (e) {
        if (e.target.closest("form[data-node-form]")) self.panelDirty = true;
      });
      panel.addEventListener("click", function (e) {
        var action = e.target.closest("[data-action]");
        if (!action) return;
        var box = panel.querySelector("[data-node-panel]");
        if (action.dataset.action === "delete-node" && box) self.removeNode(box.dataset.nodeId);
        if (action.dataset.action === "close-panel") self.clearPanel();
      });
    }

    // Toolbar.
    document.querySelectorAll("[data-action]").forEach(function (button) {
      var action = button.dataset.action;
      var handlers = {
        clear: function () {
          self.load({ nodes: [], edges: [] });
          self.clearPanel();
          self.clearErrors();
        },
        validate: function () {
          return self.post(self.urls.validate);
        },
        save: function () {
          return self.post(self.urls.save).then(function (r) {
            self.afterSave(r, false);
          });
        },
        publish: function () {
          return self.post(self.urls.publish).then(function (r) {
            self.afterSave(r, true);
          });
        },
        "test-run": function () {
          return self.testRun();
        },
      };
      if (!handlers[action]) return;
      button.addEventListener("click", function () {
        button.disabled = true;
        Promise.resolve(handlers[action]()).finally(function () {
          button.disabled = false;
        });
      });
    });

    window.addEventListener("beforeunload", function (e) {
      if (JSON.stringify(self.toGraph()) !== self.saved) {
        e.preventDefault();
        e.returnValue = "";
      }
    });
  };

  function init() {
    var container = document.getElementById("wf-canvas");
    var data = document.getElementById("wf-builder-config");
    if (!container || !data || !window.Drawflow) return;
    window.workflowBuilder = new Builder(container, JSON.parse(data.textContent));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
