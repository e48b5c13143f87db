// WhatsApp Web simulator page: the update-your-browser page, the QR login page, "Loading your chats", the
// conflict page or the main app, all driven by window.SIM (see README.md). Rows come from sim-render.js, the
// compose box from sim-editor.js.
(() => {
  'use strict';
  const S = window.SIM;
  if (S.screen === 'update') return;
  const R = window.SimRender;
  R.configure(S);
  const { el, svg } = R;
  const KEY = 'wa_sim_device';
  const $ = (sel, root = document) => root.querySelector(sel);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

  // ---- the account's number, where public tools read it ---------------------------------------------------
  function setWid() {
    try {
      if (S.markup === '2026-03') localStorage.setItem('last-wid', JSON.stringify(`${S.account}@c.us`));
      else localStorage.setItem('last-wid-md', JSON.stringify(`${S.account}:${S.device_no}@c.us`));
    } catch (e) { /* storage disabled */ }
  }

  function clearWid() {
    try {
      localStorage.removeItem('last-wid');
      localStorage.removeItem('last-wid-md');
    } catch (e) { /* storage disabled */ }
  }

  // ---- login page ----------------------------------------------------------------------------------------
  function landing() {
    clearWid(); // logged out: the page forgets the account's number
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
        if (st.linked) { // scanned: into the app (a /send load goes on to its chat)
          if (location.search.includes('post_logout')) location.replace('/'); else location.reload();
          return;
        }
        if (st.ref && st.ref !== box.getAttribute('data-ref')) setRef(st.ref);
        setExpired(Boolean(st.expired));
      } catch (e) { /* server restarting: try again next tick */ }
    }, S.poll_ms);
  }

  // ---- main app ------------------------------------------------------------------------------------------
  // {phone, acked: Set of packed ids whose status the server may move on, list, editor, slot, ready: history shown}
  let chat = null;
  let chatsJson = '';
  let conflicted = false;

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

  function renderBanners(fault, notice) {
    const box = $('#banners');
    const want = fault === 'phone_disconnected' ? 'alert-phone' : fault === 'computer_disconnected' ? 'alert-computer'
      : fault === 'restricted' ? 'alert-restricted' : '';
    const have = box.firstElementChild ? box.firstElementChild.getAttribute('data-testid') : '';
    if (want === have) return;
    if (!want) { box.replaceChildren(); return; }
    if (want === 'alert-restricted') { // the account's restriction, its end time in its words
      box.replaceChildren(el('div', { 'data-testid': want, role: 'alert', class: 'restricted' },
        el('div', { class: 'title' }, notice || 'Your account is restricted')));
      return;
    }
    const title = want === 'alert-phone' ? 'Phone not connected' : 'Computer not connected';
    const sub = want === 'alert-phone' ? 'Make sure your phone has an active internet connection.'
      : 'Make sure your computer has an active Internet connection.';
    box.replaceChildren(el('div', { 'data-testid': want, role: 'alert' },
      el('div', { class: 'title' }, title), el('div', { class: 'sub' }, sub)));
  }

  // A profile picture, as the real page shows one (its own host there: pps.whatsapp.net); seed: the number, or
  // the @lid id of a contact who hides it.
  function avatar(seed) {
    return el('img', { class: 'avatar', alt: '', draggable: 'false', src: `/__sim__/pp/${seed}.jpg` });
  }

  // The unread badge, as the real page draws it: only while there are unread messages.
  function unreadBadge(n) {
    if (!n) return null;
    return el('span', { 'aria-label': `${n} unread message${n === 1 ? '' : 's'}`, class: 'unread-count' }, String(n));
  }

  // One item per chat, newest first. A contact who hides the number (@lid) shows its name: no number anywhere in
  // the item, and it opens only from here (?lid=; there is no /send?phone= for it).
  function renderChats(chats) {
    const json = JSON.stringify(chats);
    if (json === chatsJson) return;
    chatsJson = json;
    const items = chats.map((c) => {
      const badge = unreadBadge(c.unread);
      const item = el('div', { role: 'listitem', class: 'chat-item', 'data-phone': c.phone },
        avatar(c.lid || c.phone), el('div', {}, el('span', { dir: 'auto', title: c.title }, c.title)),
        el('div', { class: 'last' }, c.text.split('\n')[0]), ...(badge ? [badge] : []));
      item.addEventListener('click', async () => {
        const q = c.lid ? `lid=${encodeURIComponent(c.lid)}` : `phone=${encodeURIComponent(c.phone)}`;
        const r = await api(`/__sim__/api/open?${q}`);
        if (r.valid) openChat({ key: r.chat, phone: c.phone, lid: c.lid, title: r.title }, r.messages, '');
        else showInvalid();
      });
      return item;
    });
    $('#pane-side .chat-list').replaceChildren(...items);
  }

  // ---- a chat: the compose box at once, the history (system row, then messages) history_delay_ms later -----
  // target: {key (what ?chat= takes), phone (null for an @lid contact), lid, title (+digits, or the name)}. An @lid
  // chat has no compose box: the simulator does not send to contacts who hide their number.
  function openChat(target, messages, prefill) {
    const phone = target.phone;
    const list = el('div', { class: 'conversation', role: 'application', tabindex: '0' });
    const box = el('div', {
      contenteditable: 'true', role: 'textbox', 'data-tab': '10', 'aria-placeholder': 'Type a message',
      'aria-label': 'Type a message', 'aria-multiline': 'true', spellcheck: 'true', tabindex: '10',
      class: 'compose selectable-text copyable-text', 'data-lexical-editor': 'true',
    });
    const slot = el('div', { class: 'send-slot' });
    const wrap = el('div', { class: 'compose-wrap' }, box);
    const main = el('div', { id: 'main', 'data-chat': target.key },
      el('header', {}, avatar(target.lid || phone), el('span', { dir: 'auto', title: target.title }, target.title)),
      list);
    if (!phone) { // @lid: the history only, no footer
      $('#main-slot').replaceChildren(main);
      const c = { key: target.key, phone: null, acked: new Set(), list, ready: false, main };
      chat = c;
      if (S.history_delay_ms > 0) setTimeout(() => showHistory(c, messages), S.history_delay_ms);
      else showHistory(c, messages);
      return;
    }
    if (S.strict) { // the real page may hold a second, hidden editor before the visible one
      wrap.append(el('div', { class: 'compose-placeholder', 'aria-hidden': 'true' }, 'Type a message'));
      main.append(el('div', { 'aria-hidden': 'true', class: 'offscreen' }, el('footer', {}, el('div', {
        contenteditable: 'true', role: 'textbox', 'data-tab': '10', 'aria-placeholder': 'Type a message',
        'data-lexical-editor': 'true', class: 'compose' }, el('p', {}, el('br'))))));
    }
    const c = { key: target.key, phone, acked: new Set(), list, slot, wrap, ready: false, main };
    main.append(el('footer', {}, attachButton(c), stickerInput(c), wrap, slot));
    $('#main-slot').replaceChildren(main);
    chat = c;
    const opts = { delayMs: S.input_delay_ms, onChange: () => updateSlot(c), onSubmit: () => send(c),
                   enterSends: S.enter_sends !== false };
    c.editor = S.strict ? window.SimEditor.lexical(box, opts) : window.SimEditor.plain(box, opts);
    if (prefill) c.editor.set(prefill); // pre-filling does not send
    updateSlot(c);
    box.focus();
    window.SimEditor.caretToEnd(box);
    if (S.history_delay_ms > 0) setTimeout(() => showHistory(c, messages), S.history_delay_ms);
    else showHistory(c, messages);
  }

  function showHistory(c, messages) {
    if (chat !== c) return;
    const rows = [];
    if (S.strict) rows.push(R.systemRow());
    for (const m of messages) {
      if (c.list.querySelector(`[data-id="${CSS.escape(R.domId(m.id))}"]`)) continue;
      if (m.direction !== 'in') c.acked.add(m.id);
      rows.push(R.messageRow(m));
    }
    c.list.prepend(...rows); // before anything sent while the history was loading
    R.retail(c.list);
    c.ready = true;
    c.list.scrollTop = c.list.scrollHeight;
  }

  // The send control, only while there is text (its slot holds the voice-note control otherwise), in the form
  // send_control names ('profile': the profile's own): 'button' is footer button[aria-label="Send"] >
  // span[data-icon="wds-ic-send-filled"]; 'div' the same as a div[role="button"]; 'unknown' a form no selector knows
  // (no role, no aria-label, another icon), which a person still clicks.
  function sendControl(form, send, hasText) {
    const icon = hasText ? (form === 'unknown' ? 'wds-ic-send-v2' : 'wds-ic-send-filled') : 'wds-ic-mic-filled';
    const path = hasText ? 'M3 20.5v-17L22 12zM5 17.4 16.8 12 5 6.6V10l6 2-6 2z' : 'M12 15a3 3 0 0 0 3-3V6a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-2.1a7 7 0 0 0 6-6.9z';
    const label = hasText ? 'Send' : 'Voice message';
    const kid = el('span', { 'data-icon': icon, 'aria-hidden': 'true' }, svg(icon, path));
    let node;
    if (form === 'div') node = el('div', { role: 'button', tabindex: '0', 'aria-label': label, 'data-tab': '11' }, kid);
    else if (form === 'unknown') node = el('div', { tabindex: '0', class: 'x1c4vz4f x2lah0s' }, kid);
    else node = el('button', { 'aria-label': label, 'data-tab': '11', type: 'button' }, kid);
    if (hasText) node.addEventListener('click', send);
    return node;
  }

  function updateSlot(c) {
    const hasText = c.editor ? c.editor.text().length > 0 : false;
    c.wrap.classList.toggle('has-text', hasText);
    const current = c.slot.firstElementChild;
    if (current && current.__hasText === hasText) return;
    const form = S.send_control && S.send_control !== 'profile' ? S.send_control : R.PROFILES[S.markup].send;
    const node = sendControl(form, () => send(c), hasText);
    node.__hasText = hasText;
    c.slot.replaceChildren(node);
  }

  function newBareId() {
    const bytes = crypto.getRandomValues(new Uint8Array(10));
    return `3EB0${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('').toUpperCase()}`;
  }

  function send(c) {
    if (chat !== c) return;
    const text = c.editor.text();
    if (!text) return;
    if (apiSync('/__sim__/api/click', { to: c.phone }).dropped) return; // fault: the click did nothing
    const bare = newBareId();
    const id = `true_${c.phone}@c.us_${bare}`;
    c.editor.clear();
    const row = R.messageRow({ id, direction: 'out', text, time: Date.now() / 1000, status: 'Pending' });
    c.list.append(row);
    R.retail(c.list);
    c.list.scrollTop = c.list.scrollHeight;
    const sentId = R.packed() ? id : bare; // the server takes either form
    api('/__sim__/api/send', { id: sentId, to: c.phone, text }).then((r) => {
      if (r.ack) { c.acked.add(id); R.setStatus(row, r.status); }
      else if (r.error) R.markFailed(row, r.error); // rejected: the clock stays, plus a failed mark
    }).catch(() => { /* connection lost: stays Pending, as on the real page */ });
  }

  // ---- media: the attach menu, its file inputs, the preview, the upload --------------------------------------
  // The attach button (2026-03: a div[role="button"] titled Attach around attach-menu-plus; later: a <button>
  // around plus-rounded). The menu's inputs exist only while it is open; the sticker maker's image-only input is
  // always in the page (a photo written into it becomes a sticker).
  const MEDIA_ACCEPT = 'image/*,video/mp4,video/3gpp,video/quicktime';
  function attachButton(c) {
    const old = S.markup === '2026-03';
    const icon = old ? 'attach-menu-plus' : 'plus-rounded';
    const kid = el('span', { 'data-icon': icon, 'aria-hidden': 'true' }, svg(icon, 'M11 5h2v14h-2zM5 11h14v2H5z'));
    const node = old ? el('div', { role: 'button', tabindex: '0', title: 'Attach', class: 'attach' }, kid)
      : el('button', { type: 'button', 'aria-label': 'Attach', title: 'Attach', class: 'attach' }, kid);
    node.addEventListener('click', () => toggleMenu(c));
    return node;
  }

  function fileInput(accept, onFile) {
    const input = el('input', { type: 'file', accept, style: 'display: none' });
    input.addEventListener('change', () => {
      const file = input.files && input.files[0];
      if (file) onFile(file);
      input.value = '';
    });
    return input;
  }

  function stickerInput(c) {
    return fileInput('image/*', (file) => sendMedia(c, file, 'sticker', ''));
  }

  function toggleMenu(c) {
    const open = c.main.querySelector('.attach-menu');
    if (open) { open.remove(); return; }
    const item = (label, input) => {
      const li = el('li', { role: 'menuitem', tabindex: '0' }, el('span', {}, label));
      if (input) { li.append(input); li.addEventListener('click', () => input.click()); }
      return li;
    };
    const chosen = (which) => (file) => { closeMenu(c); choose(c, file, which); };
    const menu = el('ul', { role: 'menu', class: 'attach-menu' },
      item('Document', fileInput('*', chosen('document'))),
      item('Photos & videos', fileInput(MEDIA_ACCEPT, chosen('media'))),
      item('Camera'), item('Audio', fileInput('audio/*', chosen('audio'))), item('Contact'), item('Poll'),
      item('Event'), item('New sticker'));
    c.main.append(menu);
  }

  function closeMenu(c) {
    const open = c.main.querySelector('.attach-menu');
    if (open) open.remove();
  }

  // A chosen file: refused at once when over the page's limit (the real wording is not known; this one names it),
  // else the full-pane preview with its caption box (none for audio) and its own Send.
  function choose(c, file, which) {
    if (chat !== c) return;
    let kind = which;
    if (which === 'media') kind = file.type.startsWith('video/') ? 'video' : 'image';
    const limitMb = kind === 'document' ? S.max_document_mb : S.max_media_mb;
    if (file.size > limitMb * 1e6) {
      const ok = el('div', { role: 'button', tabindex: '0' }, 'OK');
      ok.addEventListener('click', closeModal);
      modal(el('div', { class: 'popup-body' },
        `The file you tried adding is larger than ${limitMb} MB. Try sending a smaller file.`),
      el('div', { class: 'popup-actions' }, ok));
      return;
    }
    const caption = kind === 'audio' ? null : el('div', {
      contenteditable: 'true', role: 'textbox', 'aria-label': 'Add a caption', 'aria-placeholder': 'Add a caption',
      'data-lexical-editor': 'true', class: 'compose caption', 'data-tab': '10' });
    const send = el('div', { role: 'button', tabindex: '0', 'aria-label': 'Send', class: 'media-send' },
      el('span', { 'data-icon': 'wds-ic-send-filled', 'aria-hidden': 'true' },
        svg('wds-ic-send-filled', 'M3 20.5v-17L22 12zM5 17.4 16.8 12 5 6.6V10l6 2-6 2z')));
    const close = el('div', { role: 'button', tabindex: '0', 'aria-label': 'Close', class: 'media-close' }, '×');
    const shown = kind === 'image' || kind === 'video' ? el('img', { class: 'media-thumb', alt: '',
      src: URL.createObjectURL(file) }) : el('div', { class: 'doc-name' }, file.name);
    const editor = el('div', { class: 'media-editor', 'data-kind': kind }, el('header', {}, close,
      el('span', {}, file.name)), el('div', { class: 'media-preview' }, shown),
    el('div', { class: 'media-caption' }, ...(caption ? [caption] : []), send));
    c.main.append(editor);
    let box = null;
    if (caption) {
      const opts = { delayMs: S.input_delay_ms, onChange: () => {}, onSubmit: () => send.click(), enterSends: true };
      box = S.strict ? window.SimEditor.lexical(caption, opts) : window.SimEditor.plain(caption, opts);
      caption.focus();
    }
    close.addEventListener('click', () => editor.remove());
    send.addEventListener('click', () => {
      if (!editor.isConnected) return;
      const text = box ? box.text() : '';
      editor.remove();
      sendMedia(c, file, kind, text);
    });
  }

  // The click: the row shows at once, Pending, while the bytes upload (size / upload_kbps on the server); the send
  // is recorded once they arrived.
  function sendMedia(c, file, kind, text) {
    if (chat !== c) return;
    if (apiSync('/__sim__/api/click', { to: c.phone }).dropped) return; // fault: the click did nothing
    const bare = newBareId();
    const id = `true_${c.phone}@c.us_${bare}`;
    const preview = kind === 'image' || kind === 'video' || kind === 'sticker' ? URL.createObjectURL(file) : null;
    const row = R.messageRow({ id, direction: 'out', text, time: Date.now() / 1000, status: 'Pending', preview,
      media: { kind, filename: file.name, size: file.size, mimetype: file.type } });
    c.list.append(row);
    R.retail(c.list);
    c.list.scrollTop = c.list.scrollHeight;
    const sentId = R.packed() ? id : bare;
    const q = `name=${encodeURIComponent(file.name)}&type=${encodeURIComponent(file.type)}`;
    fetch(`/__sim__/api/upload?${q}`, { method: 'POST', body: file }).then((r) => r.json())
      .then((up) => api('/__sim__/api/send', { id: sentId, to: c.phone, text, media: { token: up.token, kind } }))
      .then((r) => {
        if (r.ack) { c.acked.add(id); R.setStatus(row, r.status); }
        else if (r.error) R.markFailed(row, r.error);
      })
      .catch(() => { /* connection lost: stays Pending, as on the real page */ });
  }

  function applyMessages(messages) {
    if (!chat || !chat.ready || !messages) return;
    for (const m of messages) {
      const bubble = chat.list.querySelector(`[data-id="${CSS.escape(R.domId(m.id))}"]`);
      if (!bubble) { // incoming, or sent from another device of this account
        if (m.direction !== 'in') chat.acked.add(m.id);
        chat.list.append(R.messageRow(m));
        R.retail(chat.list);
        chat.list.scrollTop = chat.list.scrollHeight;
      } else if (m.direction !== 'in' && chat.acked.has(m.id)) R.setStatus(bubble.parentElement, m.status);
    }
  }

  // The chat a /send load is opening, kept until it is open so a reload (conflict's "Use here") goes on to it.
  const PENDING = 'wa_sim_pending_chat';

  async function openFromUrl(phone, text) {
    history.replaceState(null, '', '/'); // the real page also leaves /send behind
    try { sessionStorage.setItem(PENDING, JSON.stringify({ phone, text })); } catch (e) { /* storage disabled */ }
    modal(el('div', { class: 'popup-body' }, el('span', { class: 'spinner' }), 'Starting chat'));
    const [r] = await Promise.all([
      api(`/__sim__/api/open?phone=${encodeURIComponent(phone)}`), sleep(S.starting_chat_s * 1000),
    ]);
    if (conflicted) return;
    try { sessionStorage.removeItem(PENDING); } catch (e) { /* storage disabled */ }
    closeModal();
    if (r.valid) openChat({ key: r.chat, phone, lid: null, title: r.title }, r.messages, text);
    else showInvalid();
  }

  // ---- full-page screens and overlays ----------------------------------------------------------------------
  function showLoading() {
    $('#app').replaceChildren(el('div', { class: 'startup' }, el('div', { class: 'startup-logo' }, 'WhatsApp'),
      el('progress', { value: '40', max: '100' }), el('div', { class: 'startup-title' }, 'Loading your chats'),
      el('div', { class: 'startup-sub' }, 'End-to-end encrypted')));
  }

  // A full page, not a dialog; "Use here" takes the session back and reloads (a /send URL is still there).
  function showConflict() {
    conflicted = true;
    chat = null;
    closeModal();
    $('#overlay-root').replaceChildren();
    const close = el('div', { role: 'button', tabindex: '0', class: 'btn-secondary' }, 'Close');
    const useHere = el('div', { role: 'button', tabindex: '0', class: 'btn-primary' }, 'Use here');
    useHere.addEventListener('click', async () => {
      await api('/__sim__/api/use_here', {});
      location.reload();
    });
    $('#app').replaceChildren(el('div', { class: 'conflict-page' }, el('div', { class: 'conflict-card' },
      el('div', { class: 'conflict-text' },
        'WhatsApp is open in another window. Click "Use here" to use WhatsApp in this window.'),
      el('div', { class: 'conflict-actions' }, close, useHere))));
  }

  // A full page: the account is banned. No app, no chats; nothing to click that would help.
  function showBanned(words) {
    conflicted = true;
    chat = null;
    closeModal();
    $('#overlay-root').replaceChildren();
    $('#app').replaceChildren(el('div', { class: 'conflict-page ban-page' }, el('div', { class: 'conflict-card' },
      el('div', { class: 'conflict-text' }, words))));
  }

  function showWhatsNew() {
    if (conflicted) return;
    const ok = el('div', { role: 'button', tabindex: '0' }, 'OK');
    const overlay = el('div', { role: 'dialog', 'aria-label': "What's new", 'aria-modal': 'true', class: 'whats-new' },
      el('div', { class: 'popup' }, el('h2', {}, "What's new"),
        el('div', { class: 'popup-body' }, 'Chats, calls and updates now have a fresh look.'),
        el('div', { class: 'popup-actions' }, ok)));
    ok.addEventListener('click', async () => {
      overlay.remove();
      await api('/__sim__/api/whats_new', {});
    });
    $('#overlay-root').replaceChildren(overlay);
  }

  function mainApp() {
    $('#app').replaceChildren($('#tpl-app').content.cloneNode(true));
    if (S.notice) renderBanners('restricted', S.notice); // before any chat opens: the sender must see it first
    let timer = null;
    const tick = async () => {
      try {
        const q = chat ? `?chat=${encodeURIComponent(chat.key)}` : '';
        const st = await api(`/__sim__/api/state${q}`);
        if (conflicted) return;
        if (!st.linked) { location.replace('/?post_logout=1'); return; } // logged out: back to the QR page
        if (st.fault === 'conflict') { clearInterval(timer); showConflict(); return; }
        if (st.fault === 'banned') { clearInterval(timer); showBanned(st.notice); return; }
        renderBanners(st.fault, st.notice);
        renderChats(st.chats || []);
        if (chat && q.endsWith(encodeURIComponent(chat.key))) applyMessages(st.messages);
      } catch (e) { /* server restarting: try again next tick */ }
    };
    tick();
    timer = setInterval(tick, S.poll_ms);
    if (S.whats_new) setTimeout(showWhatsNew, 300);
    let pending = S.chat !== null && S.chat !== undefined ? { phone: S.chat, text: S.text || '' } : null;
    try { pending = pending || JSON.parse(sessionStorage.getItem(PENDING) || 'null'); } catch (e) { pending = null; }
    if (pending) openFromUrl(pending.phone, pending.text);
  }

  function boot() {
    setWid();
    const start = () => (S.screen === 'conflict' ? showConflict() : S.screen === 'banned' ? showBanned(S.notice)
      : mainApp());
    if (S.boot_delay_s > 0) {
      showLoading();
      setTimeout(start, S.boot_delay_s * 1000);
    } else start();
  }

  if (adoptStoredDevice()) return;
  if (S.linked) boot();
  else landing();
})();
