/* The playground (/playground): an expression or a graph, evaluated by this service's own API
   (POST /v1/expression, /v1/evaluate, /v1/render), shown as a picture, a table and one node's detail.
   Plain JavaScript, no framework, no request to another site. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const FUNCTIONS = new Set(["log", "exp", "relu"]);
  const JSON_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;
  const INFIX = { add: "+", sub: "-", mul: "*", div: "/" };

  // ----- Numbers exactly as the service wrote them --------------------------------------------------

  /** A JSON number with the text it was written as: 2.0 stays "2.0" and the int 1 stays "1". */
  class Num {
    constructor(value, text) {
      this.value = value;
      this.text = text;
    }
  }

  /** JSON.parse, each number kept as a Num with its source text (where the browser gives it). */
  function parseKeepingNumbers(text) {
    return JSON.parse(text, function (key, value, context) {
      if (typeof value !== "number") return value;
      const source = context && typeof context.source === "string" ? context.source : String(value);
      return new Num(value, source);
    });
  }

  const valueOf = (x) => (x instanceof Num ? x.value : x);
  const shown = (x) => (x instanceof Num ? x.text : x === undefined || x === null ? "" : String(x));
  /** A key for an id: the string "1" and the integer 1 are different ids. */
  const idKey = (id) => (typeof id === "string" ? "s:" + id : "n:" + shown(id));
  const idText = (id) => (typeof id === "string" ? id : shown(id));

  /** JSON text of a parsed value, its numbers written as they came. */
  function toJson(x) {
    if (x instanceof Num) return x.text;
    if (Array.isArray(x)) return "[" + x.map(toJson).join(",") + "]";
    if (x !== null && typeof x === "object") {
      return "{" + Object.keys(x).map((k) => JSON.stringify(k) + ":" + toJson(x[k])).join(",") + "}";
    }
    return JSON.stringify(x);
  }

  /** A double as the service writes one: shortest digits, decimal for 1e-5 <= |x| < 1e16, else 1.5e-7. */
  function doubleText(x) {
    if (!Number.isFinite(x)) return String(x);
    if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
    const [mantissa, exponentText] = x.toExponential().split("e");
    const exponent = Number(exponentText);
    const sign = x < 0 ? "-" : "";
    const digits = mantissa.replace("-", "").replace(".", "");
    if (exponent < -5 || exponent >= 16) {
      const m = digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits;
      return sign + m + "e" + (exponent < 0 ? "-" : "+") + Math.abs(exponent);
    }
    if (exponent < 0) return sign + "0." + "0".repeat(-exponent - 1) + digits;
    return sign + digits.slice(0, exponent + 1).padEnd(exponent + 1, "0") + "." + (digits.slice(exponent + 1) || "0");
  }

  const isIntText = (x) => x instanceof Num && !/[.eE]/.test(x.text);

  // ----- Local gradients, as the reference Value class defines them ----------------------------------
  // Used only until the service answers them itself (POST /v1/render?format=json): marked on the page.
  // The products and quotients are IEEE operations, the same bits as the service's; exp's is its own data;
  // pow's and div's go through the browser's Math.pow, which may differ from the service's libm in the
  // last digit, and are marked so.

  /** For a node of `op` with these children's data (and pow's exponent) and its grad: per child, the local
   * gradient and the gradient the backward pass sends that child, computed as the reference class does
   * (a - b is a + (b * -1), a / b is a * b ** -1, -a is a * -1). `exact` is false where Math.pow is used.
   * `ownData` is the node's own data. */
  function localGradients(op, data, exponent, grad, ownData) {
    const g = valueOf(grad);
    const [a, b] = data.map(valueOf);
    switch (op) {
      case "add":
        return [edge(1, 1 * g, true, isIntText(grad)), edge(1, 1 * g, true, isIntText(grad))];
      case "sub":
        return [edge(1, 1 * g, true, isIntText(grad)), edge(-1, -1 * (1 * g), true, isIntText(grad))];
      case "mul":
        return [edge(b, b * g), edge(a, a * g)];
      case "div": {
        const inverse = Math.pow(b, -1);
        const local = -1 * Math.pow(b, -2);
        return [edge(inverse, inverse * g, false), edge(a * local, local * (a * g), false)];
      }
      case "pow": {
        const e = valueOf(exponent);
        const local = e * Math.pow(a, e - 1);
        return [edge(local, local * g, false)];
      }
      case "log":
        return [edge(1 / a, (1 / a) * g)];
      case "exp": // math.exp(x) is both exp's value and its local gradient
        return [edge(valueOf(ownData), valueOf(ownData) * g)];
      case "relu":
        return [edge(a > 0 ? 1 : 0, (a > 0 ? 1 : 0) * g)];
      case "neg":
        return [edge(-1, -1 * g, true, isIntText(grad))];
      default:
        return null;
    }
  }

  function edge(local, carried, exact = true, integer = false) {
    const text = (x, isInt) => (isInt && Number.isInteger(x) ? String(x) : doubleText(x));
    return { local: text(local, integer && Number.isInteger(local)), carried: text(carried, integer), exact, computedHere: true };
  }

  // ----- Calling the service -------------------------------------------------------------------------

  /** POST to this service: {ok, status, type, text} or {ok: false, status, problem}. */
  async function post(path, body, accept) {
    const headers = { "Content-Type": "application/json", Accept: accept || "application/json" };
    const token = $("token").value.trim();
    if (token) headers.Authorization = "Bearer " + token;
    let response;
    try {
      response = await fetch(path, { method: "POST", headers, body, credentials: "omit", cache: "no-store" });
    } catch (error) {
      return { ok: false, status: 0, problem: { title: "The service could not be reached", detail: String(error.message || error) } };
    }
    const text = await response.text();
    const type = response.headers.get("Content-Type") || "";
    if (response.ok) return { ok: true, status: response.status, type, text };
    let problem;
    try {
      problem = JSON.parse(text);
    } catch (error) {
      problem = { title: response.statusText || "Error " + response.status, detail: text.slice(0, 500) };
    }
    return { ok: false, status: response.status, problem };
  }

  // ----- The form ------------------------------------------------------------------------------------

  let mode = "expression";
  let syncLater = 0;

  function setMode(next) {
    mode = next;
    for (const name of ["expression", "graph"]) {
      $("tab-" + name).setAttribute("aria-selected", String(name === next));
      $(name + "-mode").hidden = name !== next;
    }
    clearErrors();
  }

  function inputRows() {
    return Array.from($("input-rows").querySelectorAll(".input-row"));
  }

  function addInputRow(name, value) {
    const row = document.createElement("div");
    row.className = "input-row";
    row.dataset.name = name;
    const nameInput = textInput("input-name", name, "Input name");
    const equals = document.createElement("span");
    equals.className = "equals";
    equals.textContent = "=";
    const valueInput = textInput("input-value", value, "Value of " + name);
    valueInput.inputMode = "decimal";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove-input";
    remove.title = "Remove this input";
    remove.setAttribute("aria-label", "Remove " + name);
    remove.textContent = "×";
    const error = document.createElement("div");
    error.className = "field-error";
    error.setAttribute("role", "alert");
    row.append(nameInput, equals, valueInput, remove, error);
    $("input-rows").append(row);
    return row;
  }

  function textInput(className, value, label) {
    const input = document.createElement("input");
    input.type = "text";
    input.className = className;
    input.value = value;
    input.spellcheck = false;
    input.autocomplete = "off";
    input.setAttribute("aria-label", label);
    return input;
  }

  /** Adds a row for each name the expression uses that has none; drops empty rows of names it no longer uses. */
  function syncInputsWithExpression() {
    const used = new Set((($("expression").value.match(/(?<![\w.])[A-Za-z_][A-Za-z0-9_]*/g)) || []).filter((name) => !FUNCTIONS.has(name)));
    const have = new Set();
    for (const row of inputRows()) {
      const name = row.querySelector(".input-name").value.trim();
      const value = row.querySelector(".input-value").value.trim();
      if (row.dataset.auto === "yes" && !used.has(name) && value === "") row.remove();
      else have.add(name);
    }
    for (const name of used) {
      if (!have.has(name)) addInputRow(name, "").dataset.auto = "yes";
    }
  }

  function clearErrors() {
    for (const element of document.querySelectorAll(".field-error")) element.replaceChildren();
    for (const element of document.querySelectorAll("[aria-invalid]")) element.removeAttribute("aria-invalid");
    $("problem").hidden = true;
    $("problem").replaceChildren();
  }

  /** Shows `message` under the input it is about; `input` is marked invalid. */
  function fieldError(slot, input, message) {
    const line = document.createElement("p");
    line.textContent = message;
    slot.append(line);
    if (input) input.setAttribute("aria-invalid", "true");
  }

  /** A problem+json answer: its title and detail above, each `errors` entry next to the input at fault. */
  function showProblem(result, request) {
    const problem = result.problem || {};
    const box = $("problem");
    const title = document.createElement("strong");
    title.textContent = (problem.title || "The request was refused") + (result.status ? " (" + result.status + ")" : "");
    const detail = document.createElement("p");
    detail.textContent = problem.detail || "";
    box.append(title, detail);
    if (typeof problem.type === "string" && problem.type.startsWith("/problems/")) {
      const more = document.createElement("p");
      const link = document.createElement("a");
      link.href = problem.type;
      link.textContent = "What this problem means, and what to do";
      more.append(link);
      box.append(more);
    }
    box.hidden = false;
    const errors = Array.isArray(problem.errors) ? problem.errors : [];
    if (result.status === 401) {
      $("token-details").open = true;
      fieldError($("token-error"), $("token"), problem.detail || "A valid bearer token is needed.");
      return;
    }
    if (errors.length === 0) {
      // A refusal of what was typed is shown there too; any other failure only above.
      if (result.status === 400 || result.status === 422) placeError({ message: problem.detail || problem.title || "" }, request);
      return;
    }
    for (const entry of errors) placeError(entry, request);
  }

  function placeError(entry, request) {
    const message = String(entry.message || "");
    if (request.mode === "graph") {
      const where = [];
      if (entry.node !== undefined) where.push("node " + idText(entry.node));
      if (entry.index !== undefined) where.push("nodes[" + entry.index + "]");
      if (entry.field) where.push(entry.field);
      fieldError($("graph-error"), $("graph"), (where.length ? where.join(" · ") + ": " : "") + message);
      return;
    }
    const field = typeof entry.field === "string" ? entry.field : "expression";
    if (field.startsWith("inputs.")) {
      const name = field.slice("inputs.".length);
      const row = inputRows().find((r) => r.querySelector(".input-name").value.trim() === name);
      if (row) {
        fieldError(row.querySelector(".field-error"), row.querySelector(".input-value"), message);
        return;
      }
    }
    if (field.startsWith("inputs")) {
      fieldError($("inputs-error"), null, message);
      return;
    }
    const place = entry.column !== undefined ? "column " + entry.column + (entry.text ? ", “" + entry.text + "”" : "") + ": " : "";
    fieldError($("expression-error"), $("expression"), place + message);
  }

  // ----- Evaluating ----------------------------------------------------------------------------------

  /** The expression request's JSON: a value that is a JSON number is sent as typed, anything else as a
   * string, for the service to refuse next to that input; a row with no value is left out (if the
   * expression uses its name, the service says so, pointing there). */
  function expressionRequest() {
    const entries = [];
    let complete = true;
    for (const row of inputRows()) {
      const name = row.querySelector(".input-name").value.trim();
      const value = row.querySelector(".input-value").value.trim();
      if (!value) continue;
      if (!name) {
        fieldError(row.querySelector(".field-error"), row.querySelector(".input-name"), "Give this input a name.");
        complete = false;
        continue;
      }
      entries.push(JSON.stringify(name) + ":" + (JSON_NUMBER.test(value) ? value : JSON.stringify(value)));
    }
    if (!complete) return null;
    return '{"expression":' + JSON.stringify($("expression").value) + ',"inputs":{' + entries.join(",") + "}}";
  }

  async function evaluateExpression() {
    const body = expressionRequest();
    if (body === null) return null;
    const result = await post("/v1/expression", body);
    if (!result.ok) {
      showProblem(result, { mode: "expression" });
      return null;
    }
    const answer = parseKeepingNumbers(result.text);
    const nodes = answer.nodes.map((node) => ({
      id: node.id,
      data: node.data,
      grad: node.grad,
      how: node.expression,
      op: node.op === undefined ? undefined : node.op || "value",
      children: node.children || [],
      exponent: node.exponent,
      local_grads: node.local_grads,
    }));
    // The picture needs each node's op and children; an older service answers without them.
    const drawable = nodes.every((node) => node.op !== undefined);
    return { nodes, output: answer.output, unused: answer.unused || [], graphText: drawable ? graphJson(nodes) : null };
  }

  /** The graph of an expression's answer, as /v1/render takes it. */
  function graphJson(nodes) {
    const requestNodes = nodes.map((node) => {
      if (!node.op || node.op === "value") return { id: node.id, data: node.data };
      const made = { id: node.id, op: node.op, children: node.children };
      if (node.exponent !== undefined) made.exponent = node.exponent;
      return made;
    });
    return toJson({ nodes: requestNodes });
  }

  async function evaluateGraph() {
    const text = $("graph").value;
    let graph = null;
    try {
      graph = parseKeepingNumbers(text);
    } catch (error) {
      graph = null; // the service says where the JSON is wrong
    }
    const result = await post("/v1/evaluate", text);
    if (!result.ok) {
      showProblem(result, { mode: "graph" });
      return null;
    }
    const answer = parseKeepingNumbers(result.text);
    const givenNodes = graph && Array.isArray(graph.nodes) ? graph.nodes : [];
    const nodes = answer.nodes.map((node, i) => {
      const given = givenNodes[i] || {};
      return {
        id: node.id,
        data: node.data,
        grad: node.grad,
        how: describe(given),
        op: given.local_grads !== undefined ? "recorded" : given.op || "value",
        children: given.children || [],
        exponent: given.exponent,
        local_grads: given.local_grads,
      };
    });
    return { nodes, output: answer.output, unused: [], graphText: text };
  }

  /** How a request's node is computed, in words: "c + a", "log(d)", "b ** 2.0". */
  function describe(node) {
    const op = node.op || (node.children ? "recorded" : "value");
    const children = (node.children || []).map(idText);
    if (op === "value") return "leaf";
    if (node.local_grads !== undefined) return "(" + children.join(", ") + ")";
    if (INFIX[op] && children.length === 2) return children[0] + " " + INFIX[op] + " " + children[1];
    if (op === "pow") return children[0] + " ** " + shown(node.exponent);
    if (op === "neg") return "-" + children[0];
    return op + "(" + children.join(", ") + ")";
  }

  // ----- Showing the answer --------------------------------------------------------------------------

  let current = null;

  async function evaluate(event) {
    event.preventDefault();
    clearTimeout(syncLater);
    syncInputsWithExpression();
    clearErrors();
    const button = $("evaluate");
    button.disabled = true;
    button.textContent = "Evaluating…";
    try {
      const evaluated = mode === "expression" ? await evaluateExpression() : await evaluateGraph();
      if (evaluated) await show(evaluated);
      else $("result").hidden = true;
    } finally {
      button.disabled = false;
      button.textContent = "Evaluate";
    }
  }

  async function show(evaluated) {
    const byKey = new Map(evaluated.nodes.map((node) => [idKey(node.id), node]));
    current = { ...evaluated, byKey, edges: null, exactEdges: false };
    const output = byKey.get(idKey(evaluated.output));
    const summary = $("summary");
    summary.replaceChildren(
      "Output ",
      code(idText(evaluated.output)),
      " = ",
      valueSpan(shown(output.data)),
      " · " + evaluated.nodes.length + " nodes",
    );
    if (evaluated.unused.length) {
      summary.append(" · not used by the expression: " + evaluated.unused.map(String).join(", "));
    }
    fillTable(evaluated.nodes, evaluated.output);
    $("result").hidden = false;
    await Promise.all([drawPicture(evaluated.graphText), readEdges(evaluated.graphText)]);
    select(evaluated.output);
  }

  function code(text) {
    const element = document.createElement("code");
    element.textContent = text;
    return element;
  }

  function valueSpan(text) {
    const element = document.createElement("span");
    element.className = "value";
    element.textContent = text;
    return element;
  }

  function fillTable(nodes, output) {
    const body = $("nodes-table").tBodies[0];
    body.replaceChildren();
    for (const node of nodes) {
      const row = body.insertRow();
      row.dataset.key = idKey(node.id);
      row.tabIndex = 0;
      if (idKey(node.id) === idKey(output)) row.classList.add("output");
      const id = row.insertCell();
      id.className = "node-id";
      id.textContent = idText(node.id);
      const how = row.insertCell();
      how.className = "how";
      if (node.op !== undefined) {
        const isLeaf = node.op === "value";
        const kind = document.createElement("span");
        kind.className = "tag " + (isLeaf ? "leaf" : node.op === "recorded" ? "recorded" : "op");
        kind.textContent = isLeaf ? "leaf" : node.op;
        how.append(kind);
      }
      if (node.how !== "leaf") how.append(node.how);
      for (const name of ["data", "grad"]) {
        const cell = row.insertCell();
        cell.className = "num " + name;
        cell.textContent = shown(node[name]);
      }
    }
  }

  /** The picture as SVG from the service, inlined so that its nodes can be clicked; or why there is none. */
  async function drawPicture(graphText) {
    const picture = $("picture");
    picture.replaceChildren();
    $("picture-caption").hidden = false;
    if (graphText === null) {
      unavailable("The picture is unavailable: this service's /v1/expression does not answer each node's op and children. The table has every number.");
      return;
    }
    const result = await post("/v1/render?format=svg", graphText, "image/svg+xml, application/problem+json");
    if (!result.ok || !result.type.startsWith("image/svg+xml")) {
      unavailable("The picture is unavailable: " + whyNoPicture(result) + " The table has every number.");
      return;
    }
    const svg = safeSvg(result.text);
    if (!svg) {
      unavailable("The picture is unavailable: the service's SVG could not be read.");
      return;
    }
    picture.append(svg);
    for (const group of svg.querySelectorAll("g.node")) {
      const node = nodeOfPicture(group);
      if (!node) continue;
      group.dataset.key = idKey(node.id);
      group.addEventListener("click", () => select(node.id));
    }
  }

  function whyNoPicture(result) {
    const problem = result.problem || {};
    if (result.ok) return "the service answered " + result.type + ", not SVG.";
    if (result.status === 400 && problem.type === "/problems/invalid-parameter") return "this version of the service does not draw SVG.";
    return problem.detail || problem.title || "error " + result.status + ".";
  }

  function unavailable(message) {
    $("picture-caption").hidden = true;
    const note = document.createElement("p");
    note.className = "unavailable";
    note.textContent = message;
    $("picture").append(note);
  }

  /** The SVG document, without anything that could run or load: scripts, foreign objects, event
   * attributes, links elsewhere (the page's Content-Security-Policy forbids them too). */
  function safeSvg(text) {
    const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
    const root = parsed.documentElement;
    if (!root || root.nodeName !== "svg" || parsed.getElementsByTagName("parsererror").length) return null;
    for (const element of Array.from(root.querySelectorAll("script, foreignObject, style"))) element.remove();
    for (const element of [root, ...root.querySelectorAll("*")]) {
      for (const attribute of Array.from(element.attributes)) {
        const name = attribute.name.toLowerCase();
        const isLink = name === "href" || name === "xlink:href";
        if (name.startsWith("on") || name === "style" || (isLink && !attribute.value.startsWith("#"))) {
          element.removeAttribute(attribute.name);
        }
      }
    }
    root.removeAttribute("height");
    root.setAttribute("role", "img");
    root.setAttribute("aria-label", "The graph, drawn by the service");
    return document.importNode(root, true);
  }

  /** The node a Graphviz group draws: its <title> is the node's id, or n + its position. */
  function nodeOfPicture(group) {
    const title = group.querySelector("title");
    if (!title) return null;
    const name = title.textContent.trim();
    const byId = current.nodes.find((node) => idText(node.id) === name);
    if (byId) return byId;
    const position = /^n([0-9]+)$/.exec(name);
    return position ? current.nodes[Number(position[1])] || null : null;
  }

  /** Each edge's local gradient and carried gradient as the service computed them, when it answers them
   * (POST /v1/render?format=json); else the detail computes them here. */
  async function readEdges(graphText) {
    if (graphText === null) return;
    const result = await post("/v1/render?format=json", graphText);
    if (!result.ok || !result.type.startsWith("application/json")) return;
    let picture;
    try {
      picture = parseKeepingNumbers(result.text);
    } catch (error) {
      return;
    }
    if (!Array.isArray(picture.edges)) return;
    current.edges = picture.edges;
    current.exactEdges = true;
  }

  // ----- One node's detail ---------------------------------------------------------------------------

  function select(id) {
    if (!current) return;
    const key = idKey(id);
    const node = current.byKey.get(key);
    if (!node) return;
    for (const row of $("nodes-table").tBodies[0].rows) row.setAttribute("aria-selected", String(row.dataset.key === key));
    for (const group of $("picture").querySelectorAll("g.node")) group.classList.toggle("selected", group.dataset.key === key);
    showDetail(node);
  }

  /** The edges from `node` to its children: [{child, local, carried, exact, computedHere}]. */
  function childEdges(node) {
    if (current.exactEdges) {
      return current.edges
        .filter((e) => idKey(e.parent) === idKey(node.id))
        .sort((x, y) => valueOf(x.position) - valueOf(y.position))
        .map((e) => ({ child: e.child, local: shown(e.local_grad), carried: shown(e.carried), exact: true, computedHere: false }));
    }
    if (!node.children.length) return [];
    const children = node.children.map((child) => current.byKey.get(idKey(child)));
    if (node.local_grads !== undefined) {
      return node.children.map((child, k) => ({
        child,
        local: shown(node.local_grads[k]),
        carried: doubleText(valueOf(node.local_grads[k]) * valueOf(node.grad)),
        exact: true,
        computedHere: true,
      }));
    }
    if (children.some((child) => !child)) return [];
    const computed = localGradients(node.op, children.map((child) => child.data), node.exponent, node.grad, node.data);
    if (!computed) return [];
    return computed.map((e, k) => ({ child: node.children[k], ...e }));
  }

  function showDetail(node) {
    const formula = node.op === "recorded" ? "recorded" + node.how : node.how;
    $("detail-title").replaceChildren("Node ", code(idText(node.id)));
    if (formula && formula !== "leaf") $("detail-title").append(" = ", code(formula));
    const body = $("detail-body");
    body.replaceChildren();
    const facts = document.createElement("div");
    facts.className = "facts";
    facts.append(fact("data", shown(node.data)), fact("grad", shown(node.grad)));
    body.append(facts);

    if (node.op === undefined) {
      body.append(paragraph("This service's /v1/expression does not answer how each node is computed, so its local gradients cannot be shown here; paste the graph in Graph JSON to see them."));
      return;
    }
    const edges = childEdges(node);
    if (node.children.length === 0) {
      body.append(paragraph("A leaf: nothing flows further back from here. Its grad is the derivative of the output with respect to it."));
    } else {
      body.append(heading("Its children: local gradients, and what flowed back along each edge"));
      body.append(
        numbersTable(
          [
            ["child", "node-id"],
            ["child's data", "num"],
            ["local gradient ∂" + idText(node.id) + "/∂child", "num"],
            ["sent back = local × " + idText(node.id) + ".grad", "num"],
          ],
          edges.map((e) => {
            const child = current.byKey.get(idKey(e.child));
            return [idText(e.child), child ? shown(child.data) : "", marked(e.local, e), marked(e.carried, e)];
          }),
        ),
      );
      if (edges.some((e) => e.computedHere)) {
        const inexact = edges.some((e) => !e.exact);
        body.append(
          footnote(
            "Dotted: computed in this page from the op and the children's data, as the reference Value class defines the local gradient" +
              (inexact ? "; where it takes a power, your browser's Math.pow may differ from the service's in the last digit." : "; the same arithmetic as the service's.") +
              " The service answers these itself where it has POST /v1/render?format=json.",
          ),
        );
      }
    }

    const isOutput = idKey(node.id) === idKey(current.output);
    if (isOutput) {
      body.append(paragraph("This is the output: backward() starts here with grad = 1."));
      return;
    }
    const parents = current.nodes.filter((parent) => parent.children.some((child) => idKey(child) === idKey(node.id)));
    if (!parents.length) {
      body.append(paragraph("No node uses it, so the output does not depend on it: its grad is 0."));
      return;
    }
    const rows = [];
    for (const parent of parents) {
      for (const e of childEdges(parent)) {
        if (idKey(e.child) === idKey(node.id)) rows.push([idText(parent.id), parent.how || "", marked(e.carried, e)]);
      }
    }
    body.append(heading("Where its grad came from: what each parent sent back"));
    body.append(numbersTable([["parent", "node-id"], ["computes", "how"], ["sent back to " + idText(node.id), "num"]], rows));
    const total = rows.length > 1 ? "Added up, they make " : "That is ";
    body.append(paragraph(total + idText(node.id) + ".grad = " + shown(node.grad) + "."));
  }

  function marked(text, e) {
    if (!e.computedHere) return text;
    const span = document.createElement("span");
    span.className = "computed-here";
    span.title = "Computed in this page" + (e.exact ? "" : " with the browser's Math: may differ in the last digit");
    span.textContent = text;
    return span;
  }

  function fact(name, value) {
    const element = document.createElement("span");
    element.append(name + " = ");
    const strong = document.createElement("strong");
    strong.textContent = value;
    element.append(strong);
    return element;
  }

  function heading(text) {
    const element = document.createElement("h3");
    element.textContent = text;
    return element;
  }

  function paragraph(text) {
    const element = document.createElement("p");
    element.textContent = text;
    return element;
  }

  function footnote(text) {
    const element = paragraph(text);
    element.className = "footnote";
    return element;
  }

  /** A table of `columns`, [heading, class of its cells], and `rows` of texts or elements. */
  function numbersTable(columns, rows) {
    const table = document.createElement("table");
    table.className = "numbers";
    const head = table.createTHead().insertRow();
    for (const [heading, className] of columns) {
      const cell = document.createElement("th");
      cell.textContent = heading;
      cell.className = className;
      head.append(cell);
    }
    const body = table.createTBody();
    for (const values of rows) {
      const row = body.insertRow();
      values.forEach((value, i) => {
        const cell = row.insertCell();
        cell.className = columns[i][1];
        cell.append(value);
      });
    }
    return table;
  }

  // ----- Wiring --------------------------------------------------------------------------------------

  $("tab-expression").addEventListener("click", () => setMode("expression"));
  $("tab-graph").addEventListener("click", () => setMode("graph"));
  $("add-input").addEventListener("click", () => addInputRow("", "").querySelector(".input-name").focus());
  $("input-rows").addEventListener("click", (event) => {
    const button = event.target.closest(".remove-input");
    if (button) button.closest(".input-row").remove();
  });
  $("input-rows").addEventListener("input", (event) => {
    const row = event.target.closest(".input-row");
    if (!row) return;
    delete row.dataset.auto;
    if (event.target.classList.contains("input-name")) row.dataset.name = event.target.value.trim();
  });
  $("expression").addEventListener("input", () => {
    clearTimeout(syncLater);
    syncLater = setTimeout(syncInputsWithExpression, 400);
  });
  $("input-form").addEventListener("submit", evaluate);
  $("nodes-table").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-key]");
    if (row) select(current.byKey.get(row.dataset.key).id);
  });
  $("nodes-table").addEventListener("keydown", (event) => {
    const row = event.target.closest("tr[data-key]");
    if (row && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      select(current.byKey.get(row.dataset.key).id);
    }
  });
})();
