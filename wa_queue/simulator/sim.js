// WhatsApp Web simulator page: the QR login page or the main app, both driven by window.SIM.
// The DOM mirrors shared/whatsapp-web-dom.md; selectors used by drivers are noted where they are built.
(() => {
  'use strict';
  const S = window.SIM;
  const KEY = 'wa_sim_device';
  const $ = (sel, root = document) => root.querySelector(sel);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function el(tag, attrs = {}, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v !== null && v !== undefined) node.setAttribute(k, v);
    }
    for (const kid of kids) node.append(kid);
    return node;
  }

  function svg(title, path) {
    const ns = 'http://www.w3.org/2000/svg';
    const s = document.createElementNS(ns, 'svg');
    s.setAttribute('viewBox', '0 0 24 24');
    const t = document.createElementNS(ns, 'title');
    t.textContent = title;
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', path);
    p.setAttribute('fill', 'currentColor');
    s.append(t, p);
    return s;
  }

  async function api(path, body) {
    const init = body === undefined ? {} : {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    };
    const resp = await fetch(path, init);
    return resp.json();
  }

  // Synchronous on purpose: the send click must decide "dropped or not" before it touches the page.
  function apiSync(path, body) {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path, false);
    xhr.setRequestHeader('Content-Type', 'application/json');
    xhr.send(JSON.stringify(body));
    return JSON.parse(xhr.responseText);
  }

  // ---- device identity: the cookie is mirrored in localStorage; a lost cookie is restored from it ----------
  function adoptStoredDevice() {
    let stored = null;
    try { stored = localStorage.getItem(KEY); } catch (e) { return false; }
    if (stored && stored !== S.device && !S.linked && !sessionStorage.getItem('wa_sim_adopted')) {
      sessionStorage.setItem('wa_sim_adopted', '1');
      document.cookie = `${KEY}=${stored}; path=/; max-age=315360000; SameSite=Lax`;
      location.reload();
      return true;
    }
    try { localStorage.setItem(KEY, S.device); } catch (e) { /* storage disabled: the cookie alone will do */ }
    return false;
  }

  // ---- login page ----------------------------------------------------------------------------------------
  function landing() {
    const box = $('div[data-ref]');
    const canvas = $('canvas', box);
    let expired = false;

    function draw(ref) {
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      if (!ref) return;
      const img = new Image();
      img.onload = () => {
        if (box.getAttribute('data-ref') === ref) ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      };
      img.src = `/__sim__/qr/${encodeURIComponent(ref)}.png`;
    }

    function setRef(ref) {
      box.setAttribute('data-ref', ref);
      draw(ref);
    }

    function setExpired(value) {
      if (value === expired) return;
      expired = value;
      const old = $('button', box);
      if (old) old.remove();
      if (!value) return;
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = 'rgba(255,255,255,0.85)';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      const btn = el('button', {}, 'Click to reload QR code');
      btn.addEventListener('click', async () => {
        const r = await api('/__sim__/api/qr/reload', {});
        expired = false;
        btn.remove();
        setRef(r.ref);
      });
      box.append(btn);
    }

    draw(S.ref);
    setInterval(async () => {
      try {
        const st = await api('/__sim__/api/state');
        if (st.linked) { location.reload(); return; }
        if (st.ref && st.ref !== box.getAttribute('data-ref')) setRef(st.ref);
        setExpired(Boolean(st.expired));
      } catch (e) { /* server restarting: try again next tick */ }
    }, S.poll_ms);
  }

  // ---- message rendering ---------------------------------------------------------------------------------
  const EMOJI = /(\p{Regional_Indicator}{2}|[#*0-9]\uFE0F?\u20E3|\p{Extended_Pictographic}[\uFE0E\uFE0F]?\p{Emoji_Modifier}?(?:\u200D\p{Extended_Pictographic}[\uFE0E\uFE0F]?\p{Emoji_Modifier}?)*)/u;
  const ICONS = {
    Pending: ['wds-ic-clock', 'M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zm1 9.4 3 1.8-.8 1.3-3.7-2.2V7h1.5z'],
    Sent: ['wds-ic-check', 'M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z'],
    Delivered: ['wds-ic-double-check', 'M1 13l5 5 1.4-1.4L2.4 11.6zm6-1.4 5 5L23 6l-1.4-1.4-9.6 9.6-3.6-3.6zM18 6l-1.4-1.4-6 6 1.4 1.4z'],
    Read: ['wds-ic-double-check', 'M1 13l5 5 1.4-1.4L2.4 11.6zm6-1.4 5 5L23 6l-1.4-1.4-9.6 9.6-3.6-3.6zM18 6l-1.4-1.4-6 6 1.4 1.4z'],
  };

  // Like the real page: line breaks are <br>, emoji are <img alt="…">; text nodes carry the rest verbatim.
  function richText(text) {
    const out = [];
    text.split('\n').forEach((line, i) => {
      if (i > 0) out.push(el('br'));
      line.split(EMOJI).forEach((part, j) => { // split() puts each captured emoji at an odd index
        if (!part) return;
        out.push(j % 2 ? el('img', { alt: part, class: 'emoji', draggable: 'false' }) : document.createTextNode(part));
      });
    });
    return out;
  }

  function hhmm(t) {
    const d = new Date(t * 1000);
    return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  }

  function statusIcon(status) {
    const [name, path] = ICONS[status];
    return el('span', { 'data-testid': 'msg-status', 'aria-label': status, 'data-icon': name, role: 'img' },
      svg(name, path));
  }

  function setStatus(row, status) {
    const icon = $('[data-testid="msg-status"]', row);
    if (icon && icon.getAttribute('aria-label') !== status) icon.replaceWith(statusIcon(status));
  }

  // Selectors: div[role="row"] > div[data-id="true_<to>@c.us_<hex>"], [data-icon="tail-out"], span.selectable-text
  function messageRow(m) {
    const d = new Date(m.time * 1000);
    const pre = `[${hhmm(m.time)}, ${d.getMonth() + 1}/${d.getDate()}/${d.getFullYear()}] Me: `;
    const text = el('span', { class: 'selectable-text copyable-text', dir: 'ltr' }, el('span', {}, ...richText(m.text)));
    const meta = el('div', { class: 'meta' }, el('span', { class: 'time' }, hhmm(m.time)), statusIcon(m.status));
    const bubble = el('div', { 'data-id': m.id, class: 'msg-out focusable-list-item' },
      el('span', { 'data-icon': 'tail-out', class: 'tail' }, svg('tail-out', 'M0 0h8v13z')),
      el('div', { class: 'copyable-text', 'data-pre-plain-text': pre }, text), meta);
    return el('div', { role: 'row' }, bubble);
  }

  // ---- main app ------------------------------------------------------------------------------------------
  let chat = null; // {phone, acked: Set of ids whose status the server may move on, list: element}
  let chatsJson = '';

  function modal(...content) {
    const root = $('#modal-root');
    const dialog = el('div', { role: 'dialog', 'aria-modal': 'true' }, el('div', { class: 'popup' }, ...content));
    root.replaceChildren(dialog);
    return dialog;
  }

  function closeModal() { $('#modal-root').replaceChildren(); }

  function showInvalid() {
    const ok = el('div', { role: 'button', tabindex: '0' }, 'OK');
    ok.addEventListener('click', closeModal);
    modal(el('div', { class: 'popup-body' }, 'Phone number shared via url is invalid.'),
      el('div', { class: 'popup-actions' }, ok));
  }

  function renderBanners(fault) {
    const box = $('#banners');
    const want = fault === 'phone_disconnected' ? 'alert-phone' : fault === 'computer_disconnected' ? 'alert-computer' : '';
    const have = box.firstElementChild ? box.firstElementChild.getAttribute('data-testid') : '';
    if (want === have) return;
    if (!want) { box.replaceChildren(); return; }
    const title = want === 'alert-phone' ? 'Phone not connected' : 'Computer not connected';
    const sub = want === 'alert-phone' ? 'Make sure your phone has an active internet connection.'
      : 'Make sure your computer has an active Internet connection.';
    box.replaceChildren(el('div', { 'data-testid': want, role: 'alert' },
      el('div', { class: 'title' }, title), el('div', { class: 'sub' }, sub)));
  }

  function renderChats(chats) {
    const json = JSON.stringify(chats);
    if (json === chatsJson) return;
    chatsJson = json;
    const items = chats.map((c) => {
      const item = el('div', { role: 'listitem', class: 'chat-item', 'data-phone': c.phone },
        el('div', {}, el('span', { dir: 'auto', title: `+${c.phone}` }, `+${c.phone}`)),
        el('div', { class: 'last' }, c.text.split('\n')[0]));
      item.addEventListener('click', async () => {
        const r = await api(`/__sim__/api/open?phone=${encodeURIComponent(c.phone)}`);
        if (r.valid) openChat(c.phone, r.messages, '');
        else showInvalid();
      });
      return item;
    });
    $('#pane-side .chat-list').replaceChildren(...items);
  }

  function openChat(phone, messages, prefill) {
    const list = el('div', { class: 'conversation', role: 'application', tabindex: '0' });
    const box = el('div', {
      contenteditable: 'true', role: 'textbox', 'data-tab': '10', 'aria-placeholder': 'Type a message',
      'aria-label': 'Type a message', 'aria-multiline': 'true', spellcheck: 'true', tabindex: '10',
      class: 'compose selectable-text copyable-text', 'data-lexical-editor': 'true',
    });
    const slot = el('div', { class: 'send-slot' });
    const main = el('div', { id: 'main', 'data-chat': phone },
      el('header', {}, el('span', { dir: 'auto', title: `+${phone}` }, `+${phone}`)), list,
      el('footer', {}, el('div', { class: 'compose-wrap' }, box), slot));
    $('#main-slot').replaceChildren(main);
    chat = { phone, acked: new Set(), list, box, slot };
    for (const m of messages) { chat.acked.add(m.id); list.append(messageRow(m)); }
    setupCompose(box, slot);
    if (prefill) box.textContent = prefill; // pre-filling does not send
    updateSlot();
    box.focus();
    caretToEnd(box);
    list.scrollTop = list.scrollHeight;
  }

  // ---- the compose box: a plain-text editor kept as text nodes so its textContent is the exact message ----
  function caretToEnd(box) {
    const range = document.createRange();
    range.selectNodeContents(box);
    range.collapse(false);
    const sel = getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function insertPlain(box, text) {
    const sel = getSelection();
    let range = sel.rangeCount ? sel.getRangeAt(0) : null;
    if (!range || !box.contains(range.commonAncestorContainer)) {
      range = document.createRange();
      range.selectNodeContents(box);
      range.collapse(false);
    }
    range.deleteContents();
    const node = document.createTextNode(text);
    range.insertNode(node);
    range.setStartAfter(node);
    range.collapse(true);
    sel.removeAllRanges();
    sel.addRange(range);
    box.normalize();
    updateSlot();
  }

  // What an editor that was changed behind our back (execCommand, innerHTML) holds, as plain text.
  function plainText(root) {
    let out = '';
    const walk = (node) => {
      for (const child of node.childNodes) {
        if (child.nodeType === Node.TEXT_NODE) out += child.data;
        else if (child.nodeName === 'BR') { if (child !== node.lastChild) out += '\n'; } // a last <br> is a placeholder
        else if (child.nodeName === 'IMG') out += child.alt || '';
        else if (child.nodeName === 'DIV' || child.nodeName === 'P') {
          if (out && !out.endsWith('\n')) out += '\n';
          walk(child);
          out += '\n';
          if (child === node.lastChild) out = out.slice(0, -1);
        } else walk(child);
      }
    };
    walk(root);
    return out;
  }

  function sanitize(box) {
    if ([...box.childNodes].every((n) => n.nodeType === Node.TEXT_NODE)) return;
    box.textContent = plainText(box);
    caretToEnd(box);
  }

  function setupCompose(box, slot) {
    box.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter' || e.isComposing) return;
      e.preventDefault();
      if (e.shiftKey) insertPlain(box, '\n');
      else send();
    });
    box.addEventListener('beforeinput', (e) => {
      const t = e.inputType;
      let text = null;
      if (t === 'insertText' || t === 'insertReplacementText') text = e.data ?? (e.dataTransfer && e.dataTransfer.getData('text/plain'));
      else if (t === 'insertLineBreak' || t === 'insertParagraph') text = '\n';
      else if (t === 'insertFromPaste' || t === 'insertFromDrop') text = e.dataTransfer ? e.dataTransfer.getData('text/plain') : '';
      if (text === null || text === undefined) return;
      e.preventDefault();
      insertPlain(box, text);
    });
    box.addEventListener('paste', (e) => {
      e.preventDefault();
      insertPlain(box, e.clipboardData ? e.clipboardData.getData('text/plain') : '');
    });
    box.addEventListener('input', () => { sanitize(box); updateSlot(); });
    slot.addEventListener('click', (e) => {
      if (e.target.closest('button[aria-label="Send"]')) send();
    });
  }

  // Selector: footer button[aria-label="Send"] > span[data-icon="wds-ic-send-filled"], only while there is text.
  function updateSlot() {
    if (!chat) return;
    const hasText = chat.box.textContent.length > 0;
    const current = chat.slot.firstElementChild;
    const want = hasText ? 'Send' : 'Voice message';
    if (current && current.getAttribute('aria-label') === want) return;
    const icon = hasText ? 'wds-ic-send-filled' : 'wds-ic-mic-filled';
    const path = hasText ? 'M3 20.5v-17L22 12zM5 17.4 16.8 12 5 6.6V10l6 2-6 2z' : 'M12 15a3 3 0 0 0 3-3V6a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-2.1a7 7 0 0 0 6-6.9z';
    chat.slot.replaceChildren(el('button', { 'aria-label': want, 'data-tab': '11', type: 'button' },
      el('span', { 'data-icon': icon, 'aria-hidden': 'true' }, svg(icon, path))));
  }

  function newId(phone) {
    const bytes = crypto.getRandomValues(new Uint8Array(8));
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();
    return `true_${phone}@c.us_3EB0${hex}`;
  }

  function send() {
    if (!chat) return;
    const text = chat.box.textContent;
    if (!text) return;
    const c = chat;
    if (apiSync('/__sim__/api/click', { to: c.phone }).dropped) return; // fault: the click did nothing
    const id = newId(c.phone);
    c.box.textContent = '';
    updateSlot();
    const row = messageRow({ id, text, time: Date.now() / 1000, status: 'Pending' });
    c.list.append(row);
    c.list.scrollTop = c.list.scrollHeight;
    api('/__sim__/api/send', { id, to: c.phone, text }).then((r) => {
      if (r.ack) { c.acked.add(id); setStatus(row, r.status); }
      else if (r.error) { // rejected: the clock stays, plus a red "failed" mark
        $('.meta', row).append(el('span', { 'data-icon': 'msg-error', 'aria-label': 'Failed', role: 'img' }, '!'));
        row.firstElementChild.setAttribute('data-error', r.error);
      }
    }).catch(() => { /* connection lost: stays Pending, as on the real page */ });
  }

  function applyMessages(messages) {
    if (!chat || !messages) return;
    for (const m of messages) {
      const bubble = chat.list.querySelector(`[data-id="${CSS.escape(m.id)}"]`);
      if (!bubble) { // sent from another device of this account
        chat.acked.add(m.id);
        chat.list.append(messageRow(m));
      } else if (chat.acked.has(m.id)) setStatus(bubble.parentElement, m.status);
    }
  }

  async function openFromUrl(phone, text) {
    history.replaceState(null, '', '/'); // the real page also leaves /send behind
    modal(el('div', { class: 'popup-body' }, el('span', { class: 'spinner' }), 'Starting chat'));
    const [r] = await Promise.all([
      api(`/__sim__/api/open?phone=${encodeURIComponent(phone)}`), sleep(S.starting_chat_s * 1000),
    ]);
    closeModal();
    if (r.valid) openChat(phone, r.messages, text);
    else showInvalid();
  }

  function mainApp() {
    const tick = async () => {
      try {
        const q = chat ? `?chat=${encodeURIComponent(chat.phone)}` : '';
        const st = await api(`/__sim__/api/state${q}`);
        if (!st.linked) { location.reload(); return; } // logged out: back to the QR page
        renderBanners(st.fault);
        renderChats(st.chats || []);
        if (chat && q.endsWith(encodeURIComponent(chat.phone))) applyMessages(st.messages);
      } catch (e) { /* server restarting: try again next tick */ }
    };
    tick();
    setInterval(tick, S.poll_ms);
    if (S.chat !== null && S.chat !== undefined) openFromUrl(S.chat, S.text || '');
  }

  if (adoptStoredDevice()) return;
  if (S.linked) mainApp();
  else landing();
})();
