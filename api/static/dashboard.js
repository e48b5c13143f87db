// wa-queue operator dashboard. Plain JS, no build step. Every datum comes from the admin API with the key the
// operator typed once (kept in sessionStorage: this tab only). Text is always set with textContent, never HTML.
"use strict";

(function () {
  const API = "/api/whatsapp";
  const KEY_STORAGE = "waq.adminKey";
  const REFRESH_MS = 10000;
  const PER_PAGE = 20;
  const REPLIES = 20;  // the latest replies shown; the API and `waq inbound list` have them all
  const SVG_NS = "http://www.w3.org/2000/svg";
  const UNVERIFIED = "OutcomeUnverified";  // wa_queue.errors.OutcomeUnverified

  const state = { page: 1, pages: 1, timer: null, loading: false, again: false, qrUrls: {} };
  const listed = { page: 1, pages: 1 };  // the suppression list's pager
  const $ = (id) => document.getElementById(id);

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function getKey() { return sessionStorage.getItem(KEY_STORAGE); }

  async function api(path, options = {}) {
    const headers = Object.assign({ "X-API-Key": getKey() || "" }, options.headers || {});
    const response = await fetch(API + path, Object.assign({}, options, { headers, cache: "no-store" }));
    if (response.status === 401) { forgetKey("The key was refused; enter an admin key."); throw new ApiError(401, "unauthorized"); }
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
      throw new ApiError(response.status, message);
    }
    return response;
  }
  const getJson = async (path) => (await api(path)).json();

  // ---- key form ------------------------------------------------------------------------------------------------
  function showKeyForm(error) {
    stopRefresh();
    $("dashboard").hidden = true;
    $("toolbar").hidden = true;
    $("key-panel").hidden = false;
    $("key-error").hidden = !error;
    $("key-error").textContent = error || "";
    $("key-input").value = "";
    $("key-input").focus();
  }

  function forgetKey(reason) {
    sessionStorage.removeItem(KEY_STORAGE);
    showKeyForm(reason);
  }

  async function onKeySubmit(event) {
    event.preventDefault();
    const key = $("key-input").value.trim();
    sessionStorage.setItem(KEY_STORAGE, key);
    try {
      await getJson("/health");  // checks the key (and its admin role) before showing anything
    } catch (error) {
      if (error.status === 403) forgetKey("This key is not an admin key.");
      else if (error.status !== 401) forgetKey("Could not check the key: " + error.message);
      return;
    }
    showDashboard();
  }

  function showDashboard() {
    $("key-panel").hidden = true;
    $("dashboard").hidden = false;
    $("toolbar").hidden = false;
    refresh();
  }

  // ---- refresh loop ------------------------------------------------------------------------------------------
  function stopRefresh() { if (state.timer) { clearTimeout(state.timer); state.timer = null; } }

  async function refresh() {
    if (state.loading) { state.again = true; return; }  // one at a time; run once more when this one ends
    stopRefresh();
    if (!getKey()) return;
    state.loading = true;
    state.again = false;
    document.body.dataset.loading = "true";
    try {
      const [health, stats, sessions, failed, batches, replies, suppressions] = await Promise.all([
        getJson("/health"), getJson("/stats"), getJson("/sessions"),
        getJson("/failed?page=" + state.page + "&per_page=" + PER_PAGE), getJson("/batches"),
        getJson("/inbound?per_page=" + REPLIES),
        getJson("/suppressions?page=" + listed.page + "&per_page=" + PER_PAGE),
      ]);
      renderHealth(health);
      renderSessions(sessions.sessions || []);
      renderStats(stats);
      renderFailed(failed);
      renderBatches(batches);
      renderReplies(replies);
      renderSuppressions(suppressions);
      $("last-updated").textContent = new Date().toLocaleTimeString();
      $("last-updated").dateTime = new Date().toISOString();
      document.body.dataset.refreshed = String(Date.now());
    } catch (error) {
      if (error.status !== 401) notice("Refresh failed: " + error.message, "error");
    } finally {
      state.loading = false;
      delete document.body.dataset.loading;
      if (state.again && getKey()) refresh();
      else if (getKey()) state.timer = setTimeout(refresh, REFRESH_MS);
    }
  }

  function notice(text, kind) {
    const el = $("notice");
    el.textContent = text;
    el.dataset.kind = kind || "info";
    el.hidden = false;
  }

  // ---- rendering ---------------------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "className") node.className = value;
      else if (name.startsWith("data-")) node.setAttribute(name, value);
      else node[name] = value;
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function renderHealth(health) {
    const overall = $("overall");
    overall.textContent = health.overall;
    overall.dataset.overall = health.overall;
    for (const part of ["store", "broker"]) {
      const badge = $("check-" + part);
      badge.textContent = health.checks[part];
      badge.dataset.state = health.checks[part];
    }
    const list = $("overall-reasons");
    list.replaceChildren(...(health.reasons || []).map((reason) => el("li", {}, reason)));
  }

  function renderSessions(sessions) {
    const container = $("sessions");
    const seen = new Set();
    for (const session of sessions) {
      seen.add(session.name);
      let card = container.querySelector('[data-session="' + CSS.escape(session.name) + '"]');
      if (!card) { card = buildSessionCard(session.name); container.appendChild(card); }
      fillSessionCard(card, session);
    }
    for (const card of [...container.children]) {
      if (!seen.has(card.dataset.session)) { dropQr(card.dataset.session); card.remove(); }
    }
  }

  function buildSessionCard(name) {
    const card = el("article", { className: "session-card", "data-session": name });
    const title = el("h3", {}, name);
    title.appendChild(el("span", { className: "badge small session-status" }));
    // Why the session is down (last_error, hint): shown under the status only when set.
    const error = el("div", { className: "session-error", hidden: true });
    error.append(el("p", { className: "session-error-text" }), el("p", { className: "small session-error-hint" }));
    const details = el("dl");
    for (const [label, cls] of [["Number", "session-number"], ["Sends today", "session-sends"],
      ["Warm-up", "session-warmup"], ["Heartbeat", "session-heartbeat"], ["Reconnects", "session-reconnects"]]) {
      details.append(el("dt", {}, label), el("dd", { className: cls }));
    }
    const meter = el("div", { className: "meter" });
    meter.appendChild(el("span", { className: "session-meter" }));
    const qr = el("img", { className: "session-qr", alt: "QR code to scan with the phone of " + name, hidden: true });
    const qrHint = el("p", { className: "muted small session-qr-hint", hidden: true },
      "Scan with WhatsApp on the phone: Settings → Linked devices → Link a device.");
    const restart = el("button", { type: "button", className: "secondary session-restart", "data-session": name },
      "Restart");
    restart.addEventListener("click", () => restartSession(name, restart));
    card.append(title, error, details, meter, qrHint, qr, restart);
    return card;
  }

  function fillSessionCard(card, session) {
    const status = session.status !== "banned" && session.needs_operator ? "needs_operator" : session.status;
    const badge = card.querySelector(".session-status");
    badge.textContent = status.replace(/_/g, " ");
    badge.dataset.statusBadge = status;
    card.dataset.status = session.status;
    card.dataset.connected = String(session.connected);
    const error = card.querySelector(".session-error");
    error.hidden = !session.last_error;
    error.querySelector(".session-error-text").textContent = session.last_error
      ? session.last_error + (session.last_error_at ? " (" + ago(session.last_error_at) + ")" : "") : "";
    error.querySelector(".session-error-hint").textContent = session.hint || "";
    card.querySelector(".session-number").textContent = session.number || "—";
    const sends = card.querySelector(".session-sends");
    sends.textContent = session.sends_today + " / " + session.daily_cap;
    sends.dataset.sends = session.sends_today;
    sends.dataset.cap = session.daily_cap;
    const warmup = card.querySelector(".session-warmup");
    warmup.textContent = warmupText(session.warmup);
    warmup.dataset.state = session.warmup ? session.warmup.state : "";
    const share = session.daily_cap ? Math.min(100, (100 * session.sends_today) / session.daily_cap) : 0;
    card.querySelector(".session-meter").style.width = share.toFixed(1) + "%";
    card.querySelector(".session-heartbeat").textContent = session.heartbeat_at ? ago(session.heartbeat_at) : "never";
    card.querySelector(".session-reconnects").textContent = String(session.reconnect_attempts) +
      (session.next_reconnect_at ? " (next " + new Date(session.next_reconnect_at).toLocaleTimeString() + ")" : "");
    if (session.status === "qr") loadQr(card, session.name); else hideQr(card, session.name);
  }

  // Where the session stands in the warm-up ramp (wa_queue/warmup.py); daily_cap is already today's cap.
  function warmupText(w) {
    if (!w) return "—";
    if (w.state === "ramp") {
      return "step " + w.step + " of " + w.steps + ", day " + w.day_in_step + " of " + w.days_per_step + " · " +
        w.days_left + (w.days_left === 1 ? " day" : " days") + " left";
    }
    if (w.state === "new") return "starts at the first send (" + w.cap + " a day)";
    return { off: "off", skipped: "skipped by an operator", done: "done" }[w.state] || w.state;
  }

  async function loadQr(card, name) {
    const img = card.querySelector(".session-qr");
    try {
      const blob = await (await api("/sessions/" + encodeURIComponent(name) + "/qr")).blob();
      dropQr(name);
      state.qrUrls[name] = URL.createObjectURL(blob);
      img.src = state.qrUrls[name];
      img.hidden = false;
      card.querySelector(".session-qr-hint").hidden = false;
    } catch (error) {
      hideQr(card, name);  // 409: no scan pending any more; the next refresh shows the new state
    }
  }

  function hideQr(card, name) {
    const img = card.querySelector(".session-qr");
    img.hidden = true;
    img.removeAttribute("src");
    card.querySelector(".session-qr-hint").hidden = true;
    dropQr(name);
  }

  function dropQr(name) {
    if (state.qrUrls[name]) { URL.revokeObjectURL(state.qrUrls[name]); delete state.qrUrls[name]; }
  }

  function renderStats(stats) {
    for (const status of ["pending", "processing", "sent", "failed", "paused", "expired", "cancelled"]) {
      $("count-" + status).textContent = stats.counts[status] ?? 0;
    }
    $("oldest-pending").textContent = stats.oldest_pending_age_s == null ? "none" : duration(stats.oldest_pending_age_s);
    renderChart(stats.sends_per_hour || []);
  }

  function renderChart(points) {
    // 24 slots ending with the current hour; the API lists only hours that had sends.
    const hourMs = 3600 * 1000;
    const current = Math.floor(Date.now() / hourMs) * hourMs;
    const byHour = new Map(points.map((p) => [Math.floor(Date.parse(p.hour) / hourMs) * hourMs, p.sent]));
    const slots = [];
    for (let i = 23; i >= 0; i--) { const at = current - i * hourMs; slots.push({ at, sent: byHour.get(at) || 0 }); }
    const max = Math.max(1, ...slots.map((s) => s.sent));
    const svg = $("sends-chart");
    // Draw in the element's own pixel size (no stretching of the labels), whatever the screen width.
    const width = Math.max(240, Math.round(svg.clientWidth || 480));
    const [height, left, bottom, top] = [160, 28, 18, 8];
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    const plotH = height - bottom - top;
    const barW = (width - left) / slots.length;
    const nodes = [];
    for (const frac of [0, 0.5, 1]) {
      const y = top + plotH * (1 - frac);
      nodes.push(svgEl("line", { class: "grid", x1: left, x2: width, y1: y, y2: y }));
      if (frac !== 0.5) nodes.push(svgEl("text", { class: "axis", x: 2, y: y + 3 }, String(max * frac)));
    }
    slots.forEach((slot, i) => {
      const h = (plotH * slot.sent) / max;
      const bar = svgEl("rect", { class: "bar", x: left + i * barW + 1, y: top + plotH - h, width: Math.max(1, barW - 2),
        height: h, "data-hour": new Date(slot.at).toISOString(), "data-sent": slot.sent });
      bar.appendChild(svgEl("title", {}, new Date(slot.at).toLocaleString() + ": " + slot.sent + " sent"));
      nodes.push(bar);
      if (i % (width < 400 ? 8 : 6) === 0) {
        const label = new Date(slot.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        nodes.push(svgEl("text", { class: "axis", x: left + i * barW, y: height - 4 }, label));
      }
    });
    svg.replaceChildren(...nodes);
    $("sends-24h").textContent = slots.reduce((sum, s) => sum + s.sent, 0);
    $("sends-max").textContent = Math.max(...slots.map((s) => s.sent));
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- paged lists (failed, archive, suppressions) --------------------------------------------------------------
  // One markup for each, its ids starting with the list's prefix: <prefix>-total, -table, -body, -empty, and the
  // pager that buildPager puts in its <div class="pager" data-pager="<prefix>">.
  function buildPager(prefix, pager, load) {
    const prev = el("button", { type: "button", id: prefix + "-prev", className: "secondary", disabled: true },
                    "Previous");
    const next = el("button", { type: "button", id: prefix + "-next", className: "secondary", disabled: true },
                    "Next");
    const where = el("span", {}, "Page ");
    where.append(el("span", { id: prefix + "-page" }, "1"), " of ", el("span", { id: prefix + "-pages" }, "1"));
    document.querySelector('[data-pager="' + prefix + '"]').replaceChildren(prev, where, next);
    prev.addEventListener("click", () => { pager.page = Math.max(1, pager.page - 1); load(); });
    next.addEventListener("click", () => { pager.page = Math.min(pager.pages, pager.page + 1); load(); });
  }

  function renderPaged(prefix, pager, page, rowFn) {
    pager.pages = Math.max(1, page.pages);
    if (pager.page > pager.pages) { pager.page = pager.pages; }
    $(prefix + "-total").textContent = page.total;
    $(prefix + "-page").textContent = page.page;
    $(prefix + "-pages").textContent = pager.pages;
    $(prefix + "-prev").disabled = page.page <= 1;
    $(prefix + "-next").disabled = page.page >= pager.pages;
    $(prefix + "-empty").hidden = page.total > 0;
    $(prefix + "-table").hidden = page.items.length === 0;
    $(prefix + "-body").replaceChildren(...page.items.map(rowFn));
  }

  function renderFailed(page) {
    renderPaged("failed", state, page, failedRow);
    $("retry-all").disabled = page.total === 0;
    $("unverified-hint").hidden = !page.items.some((m) => m.last_error_class === UNVERIFIED);
  }

  // A message's text, and for a media message its file: kind, name and size, with a link that downloads the file
  // (fetched with the key, which a plain link could not carry).
  function textCell(message) {
    const cell = el("td", { "data-label": "Text", title: message.text }, truncate(message.text, 80));
    const media = message.media;
    if (!media) return cell;
    const link = el("a", { href: "#", className: "media-file", "data-id": message.id },
      media.kind + " " + media.filename + " (" + sizeText(media.size) + ")");
    link.addEventListener("click", async (event) => {
      event.preventDefault();
      try {
        const blob = await (await api("/messages/" + encodeURIComponent(message.id) + "/media")).blob();
        const url = URL.createObjectURL(blob);
        const save = el("a", { href: url, download: media.filename });
        document.body.appendChild(save);
        save.click();
        save.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      } catch (error) {
        notice("The file could not be fetched: " + error.message, "error");
      }
    });
    cell.prepend(link, el("br"));
    return cell;
  }

  function sizeText(bytes) {
    return bytes >= 1e6 ? (bytes / 1e6).toFixed(1) + " MB" : Math.max(1, Math.round(bytes / 1e3)) + " kB";
  }

  function failedRow(message) {
    // OutcomeUnverified: the send was clicked (or may have been) and the chat could not be read to confirm it. Only
    // the phone can tell: the operator looks, then marks it as sent or retries it.
    const unverified = message.last_error_class === UNVERIFIED;
    const row = el("tr", { "data-id": message.id, "data-unverified": String(unverified) });
    const error = [message.last_error_class, message.last_error_text].filter(Boolean).join(": ");
    const errorCell = el("td", { "data-label": "Error", className: "failed-error" });
    if (unverified) {
      const hint = "Look at the phone's chat with " + message.phone + ": mark as sent if it is there, retry if not.";
      errorCell.appendChild(el("span", { className: "flag-unverified", title: hint },
        "sent? unverified — check the phone"));
    }
    errorCell.appendChild(el("span", { className: "failed-error-text" }, error || "—"));
    row.append(
      el("td", { "data-label": "Failed" }, message.failed_at ? new Date(message.failed_at).toLocaleString() : "—"),
      el("td", { "data-label": "Phone", className: "failed-phone" }, message.phone),
      errorCell,
      el("td", { "data-label": "Attempts" }, message.attempts),
      textCell(message),
    );
    const actions = el("td", { className: "actions" });
    const retry = el("button", { type: "button", className: "retry-one", "data-id": message.id }, "Retry");
    retry.addEventListener("click", () => act(retry, "/failed/" + encodeURIComponent(message.id) + "/retry", "POST",
      "Message " + message.id + " is pending again."));
    const markSent = el("button", { type: "button", className: "secondary mark-sent-one", "data-id": message.id },
      "Mark as sent");
    markSent.addEventListener("click", () => {
      if (!window.confirm("Mark the message to " + message.phone + " as sent? Do this only if you see it in the " +
        "phone's chat with that number: it will never be sent again.")) return;
      act(markSent, "/failed/" + encodeURIComponent(message.id) + "/mark-sent", "POST",
        "Message " + message.id + " marked as sent.");
    });
    const del = el("button", { type: "button", className: "danger delete-one", "data-id": message.id }, "Delete");
    del.addEventListener("click", () => {
      if (!window.confirm("Delete the failed message to " + message.phone + " for good? This cannot be undone.")) return;
      act(del, "/failed/" + encodeURIComponent(message.id), "DELETE", "Message " + message.id + " deleted.");
    });
    actions.append(retry, markSent, del);
    row.appendChild(actions);
    return row;
  }

  // ---- archive (read-only, loaded only while its section is open) ----------------------------------------------
  const archive = { page: 1, pages: 1 };

  async function loadArchive() {
    if (!$("archive").open || !getKey()) return;
    try {
      renderArchive(await getJson("/archive?page=" + archive.page + "&per_page=" + PER_PAGE));
    } catch (error) {
      if (error.status !== 401) notice("Archive: " + error.message, "error");
    }
  }

  function renderArchive(page) {
    renderPaged("archive", archive, page, archiveRow);
    $("archive").dataset.loaded = String(Date.now());
  }

  function archiveRow(message) {
    const error = [message.last_error_class, message.last_error_text].filter(Boolean).join(": ");
    const row = el("tr", { "data-id": message.id });
    row.append(
      el("td", { "data-label": "Failed" }, message.failed_at ? new Date(message.failed_at).toLocaleString() : "—"),
      el("td", { "data-label": "Phone" }, message.phone),
      el("td", { "data-label": "Error" }, error || "—"),
      el("td", { "data-label": "Attempts" }, message.attempts),
      textCell(message),
    );
    return row;
  }

  // A batch: its progress (what is done of its total: sent, failed, expired, cancelled), its counts, and the actions
  // its state allows.
  function renderBatches(batches) {
    const body = $("batches-body");
    body.replaceChildren(...batches.map(batchRow));
    $("batches-empty").hidden = batches.length > 0;
    $("batches-table").hidden = batches.length === 0;
  }

  function batchRow(batch) {
    const c = batch.counts;
    const done = c.sent + c.failed + c.expired + c.cancelled;
    const row = el("tr", { "data-batch": batch.name });
    row.append(el("td", {}, batch.name), el("td", { title: batch.started_at }, ago(batch.started_at)));
    const progress = el("progress", { max: batch.total, value: done, title: done + " of " + batch.total + " done" });
    const cell = el("td", { className: "progress" });
    cell.append(progress, el("span", { className: "muted small" }, " " + c.sent + " sent of " + batch.total));
    row.append(cell);
    const shown = Object.entries(c).filter(([, n]) => n > 0).map(([status, n]) => n + " " + status).join(", ");
    row.append(el("td", { className: "small" }, shown));
    const actions = el("td", { className: "actions" });
    const path = "/batches/" + encodeURIComponent(batch.name) + "/";
    const button = (verb, label, enabled) => {
      const b = el("button", { type: "button", className: verb === "cancel" ? "danger" : "secondary",
                              "data-action": verb, disabled: !enabled }, label);
      b.addEventListener("click", () => act(b, path + verb, "POST",
        (result) => "Batch " + batch.name + ": " + verb + " changed " + (result ? result.changed : 0) +
          " message(s)."));
      return b;
    };
    actions.append(button("pause", "Pause", c.pending > 0), button("resume", "Resume", c.paused > 0),
                   button("cancel", "Cancel", c.pending + c.paused > 0));
    row.append(actions);
    return row;
  }

  // ---- replies and the suppression list (read-only) ---------------------------------------------------------------
  // A reply's text and chat name are the contact's own words: set as text like everything else, never as markup.
  const OPT_CHANGES = { out: "opted out", in: "opted in" };

  function renderReplies(page) {
    $("replies-total").textContent = page.total;
    $("replies-empty").hidden = page.total > 0;
    $("replies-table").hidden = page.items.length === 0;
    $("replies-body").replaceChildren(...page.items.map(replyRow));
  }

  function replyRow(reply) {
    const row = el("tr", { "data-id": reply.id, "data-opt": reply.opt || "" });
    // No number: a contact who hides it (a username, an @lid id); the chat's name says who, in the tooltip.
    const from = reply.phone
      ? el("td", { "data-label": "From", className: "reply-from" }, reply.phone)
      : el("td", { "data-label": "From", className: "reply-from muted", title: reply.chat }, "number hidden");
    row.append(
      el("td", { "data-label": "Read", title: reply.received_at }, new Date(reply.received_at).toLocaleString()),
      el("td", { "data-label": "Session" }, reply.session),
      from,
      el("td", { "data-label": "Text", className: "reply-text", title: reply.text }, truncate(reply.text, 120)),
      el("td", { "data-label": "Opt change", className: "reply-opt" }, OPT_CHANGES[reply.opt] || "—"),
    );
    return row;
  }

  function renderSuppressions(page) {
    renderPaged("suppressions", listed, page, suppressionRow);
  }

  function suppressionRow(entry) {
    const row = el("tr", { "data-phone": entry.phone });
    row.append(
      el("td", { "data-label": "Phone" }, entry.phone),
      el("td", { "data-label": "Since", title: entry.since }, new Date(entry.since).toLocaleString()),
      el("td", { "data-label": "By" }, entry.by),
      el("td", { "data-label": "Word" }, entry.word || "—"),
    );
    return row;
  }

  // ---- actions -----------------------------------------------------------------------------------------------
  async function act(button, path, method, done) {
    button.disabled = true;
    try {
      const response = await api(path, { method });
      let body = null;
      if (response.status !== 204) { try { body = await response.json(); } catch (e) { /* empty */ } }
      notice(typeof done === "function" ? done(body) : done, "info");
    } catch (error) {
      if (error.status !== 401) notice(error.message, "error");
    } finally {
      button.disabled = false;
      await refresh();
    }
  }

  function restartSession(name, button) {
    act(button, "/sessions/" + encodeURIComponent(name) + "/restart", "POST",
      "Restart of " + name + " requested; its next health check reconnects.");
  }

  async function cancelMessage(event) {
    event.preventDefault();
    const id = $("cancel-id").value.trim();
    await act($("cancel-submit"), "/messages/" + encodeURIComponent(id) + "/cancel", "POST",
      (body) => "Message " + id + " is " + (body ? body.status : "cancelled") + ".");
    $("cancel-id").value = "";
  }

  function retryAll() {
    act($("retry-all"), "/failed/retry-all", "POST", (body) => (body ? body.requeued : 0) + " message(s) requeued.");
  }

  // ---- formatting --------------------------------------------------------------------------------------------
  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }
  function ago(iso) { return duration((Date.now() - Date.parse(iso)) / 1000) + " ago"; }
  function truncate(text, n) {  // by code points: an emoji's two halves stay together
    const chars = Array.from(text);
    return chars.length > n ? chars.slice(0, n - 1).join("") + "…" : text;
  }

  // ---- start -------------------------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("key-form").addEventListener("submit", onKeySubmit);
    $("forget-key").addEventListener("click", () => forgetKey(""));
    $("refresh-now").addEventListener("click", refresh);
    $("retry-all").addEventListener("click", retryAll);
    $("cancel-form").addEventListener("submit", cancelMessage);
    buildPager("failed", state, refresh);
    buildPager("suppressions", listed, refresh);
    buildPager("archive", archive, loadArchive);
    $("archive").addEventListener("toggle", loadArchive);
    $("refresh-now").addEventListener("click", loadArchive);
    document.addEventListener("visibilitychange", () => { if (!document.hidden && getKey()) refresh(); });
    if (getKey()) showDashboard(); else showKeyForm("");
  });
})();
