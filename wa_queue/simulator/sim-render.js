// Message rows of the simulator page, in the form of the chosen markup profile (see README.md, "Markup profiles").
// Every row is #main div[role="row"] holding one bubble div[data-id]; message bubbles carry
// div.copyable-text[data-pre-plain-text] around the text span, system rows do not.
(() => {
  'use strict';

  function el(tag, attrs = {}, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
    }
    for (const kid of kids) node.append(kid);
    return node;
  }

  function svg(title, path) {
    const ns = 'http://www.w3.org/2000/svg';
    const s = document.createElementNS(ns, 'svg');
    s.setAttribute('viewBox', '0 0 24 24');
    if (title) {
      const t = document.createElementNS(ns, 'title');
      t.textContent = title;
      s.append(t);
    }
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', path);
    p.setAttribute('fill', 'currentColor');
    s.append(p);
    return s;
  }

  // packed: data-id true_/false_<chat>@c.us_<hex> (else the bare <hex>); dirClass: .message-out/.message-in;
  // tails: [data-icon="tail-out"/"tail-in"] on every bubble (true) or on the first of a run only ('run');
  // testid: data-testid="conv-msg-<id>" on the row's first child; text: the text span's attributes; status: how the
  // ticks are marked; send: the send control's form (sim.js).
  const SELECTABLE = { class: 'selectable-text copyable-text', 'data-testid': 'selectable-text' };
  const PROFILES = {
    '2026-03': { packed: true, dirClass: true, tails: true, text: SELECTABLE, status: 'icon', send: 'button' },
    '2026-05': { packed: false, dirClass: true, tails: false,
      text: { class: '_ao3e _aupe copyable-text', 'data-testid': 'selectable-text' }, status: 'icon', send: 'button' },
    '2026-08': { packed: true, dirClass: false, tails: true, text: SELECTABLE, status: 'aria', send: 'button' },
    '2026-11': { packed: true, dirClass: false, tails: 'run', testid: true, text: SELECTABLE, status: 'wds',
      send: 'div' },
    unknown: { packed: false, dirClass: false, tails: false, text: { class: 'x9f619' }, status: 'data',
      send: 'button' },
  };

  // The page's options (window.SIM): markup, strict, clock_skew_s, row_ids, ticks; set once by sim.js at boot.
  let P = { markup: '2026-08', strict: true, skew: 0, rowIds: 'profile', ticks: 'profile' };
  function configure(S) {
    P = { markup: S.markup, strict: S.strict, skew: Number(S.clock_skew_s || 0), rowIds: S.row_ids || 'profile',
      ticks: S.ticks || 'profile' };
  }
  const prof = () => PROFILES[P.markup];
  const packed = () => (P.rowIds === 'profile' ? prof().packed : P.rowIds === 'packed');

  const CLOCK = 'M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zm1 9.4 3 1.8-.8 1.3-3.7-2.2V7h1.5z';
  const CHECK = 'M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z';
  const DOUBLE = 'M1 13l5 5 1.4-1.4L2.4 11.6zm6-1.4 5 5L23 6l-1.4-1.4-9.6 9.6-3.6-3.6zM18 6l-1.4-1.4-6 6 1.4 1.4z';
  const ICONS = {
    Pending: ['msg-time', 'wds-ic-clock', CLOCK, 0],
    Sent: ['msg-check', 'wds-ic-check', CHECK, 1],
    Delivered: ['msg-dblcheck', 'wds-ic-double-check', DOUBLE, 2],
    Read: ['msg-dblcheck', 'wds-ic-double-check', DOUBLE, 3],
  };
  // 2026-11: the tick's SVG <title> names it (the 2026-07 notes give wds-ic-read); no data-icon on the tick.
  const WDS = { Pending: 'wds-ic-clock', Sent: 'wds-ic-check', Delivered: 'wds-ic-double-check', Read: 'wds-ic-read' };

  function statusIcon(status) {
    const [old, wds, path, code] = ICONS[status];
    const label = P.ticks === 'title' ? null : ` ${status} `; // ticks=title: the SVG <title> alone tells it
    let icon;
    if (prof().status === 'wds') { // 2026-11: no msg-* icon, no data-icon: an aria-label and the SVG <title>
      icon = el('span', { 'aria-label': label, role: 'img' }, svg(WDS[status], path));
    } else if (prof().status === 'aria') { // since 2026-06: the aria-label, padded with spaces, names the status
      icon = el('span', { 'aria-label': label, 'data-icon': wds, role: 'img' }, svg(wds, path));
    } else if (prof().status === 'icon') { // before: the data-icon; only a read message has an aria-label
      icon = el('span', { 'data-icon': old, 'aria-label': status === 'Read' ? ' Read ' : null }, svg(old, path));
    } else { // a form no driver knows: a bare code, no label, no named icon
      icon = el('span', { 'data-status': String(code) }, svg('', path));
    }
    icon.classList.add('tick'); // no status in class names: the profile's own marker is the only one
    return icon;
  }

  function failedMark() {
    const form = prof().status;
    if (form === 'data') return el('span', { 'data-status': '-1', class: 'failed' }, '!');
    if (form === 'wds') return el('span', { 'aria-label': ' Failed ', class: 'failed', role: 'img' }, '!');
    return el('span', { 'data-icon': 'msg-error', 'aria-label': form === 'aria' ? ' Failed ' : 'Failed',
      class: 'failed', role: 'img' }, '!');
  }

  // ---- text: formatting, links, emoji, line breaks --------------------------------------------------------
  const EMOJI = /(\p{Regional_Indicator}{2}|[#*0-9]\uFE0F?\u20E3|\p{Extended_Pictographic}[\uFE0E\uFE0F]?\p{Emoji_Modifier}?(?:\u200D\p{Extended_Pictographic}[\uFE0E\uFE0F]?\p{Emoji_Modifier}?)*)/u;
  const URL = /((?:https?:\/\/|www\.)[^\s<>"]*[^\s<>".,;:!?)\]}'*_~])/i;
  // A marker opens after a non-word character (or the start), closes before one, and hugs non-space text.
  const MARK = /(^|[^\p{L}\p{N}])([*_~`])(\S(?:.*?\S)?)\2(?![\p{L}\p{N}])/u;
  const TAGS = { '*': 'strong', _: 'em', '~': 'del', '`': 'code' };
  const READ_MORE_AT = 700;

  // An <img alt="😀"> as on the real page; its picture is the glyph itself, drawn by an inline SVG.
  function emojiImg(emoji) {
    const pic = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 20 20"><text x="0" y="16" font-size="16">${emoji}</text></svg>`;
    return el('img', { alt: emoji, class: 'emoji', draggable: 'false',
      src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(pic)}` });
  }

  function emojiNodes(text) {
    const out = [];
    text.split(EMOJI).forEach((part, j) => { // split() puts each captured emoji at an odd index
      if (!part) return;
      out.push(j % 2 ? emojiImg(part) : document.createTextNode(part));
    });
    return out;
  }

  function formatted(text) {
    const out = [];
    let rest = text;
    while (rest) {
      const m = MARK.exec(rest);
      if (!m) { out.push(...emojiNodes(rest)); break; }
      const start = m.index + m[1].length;
      if (start) out.push(...emojiNodes(rest.slice(0, start)));
      const tag = TAGS[m[2]];
      out.push(el(tag, {}, ...(tag === 'code' ? emojiNodes(m[3]) : formatted(m[3]))));
      rest = rest.slice(m.index + m[0].length);
    }
    return out;
  }

  function linked(line) {
    const out = [];
    line.split(URL).forEach((part, j) => {
      if (!part) return;
      if (j % 2) {
        const href = /^www\./i.test(part) ? `http://${part}` : part;
        out.push(el('a', { href, target: '_blank', rel: 'noopener noreferrer', title: href }, part));
      } else out.push(...formatted(part));
    });
    return out;
  }

  // strict: WhatsApp's rendering (markers become <strong>/<em>/<del>/<code>, links <a>); lenient: the text as typed.
  function richText(text, strict) {
    const out = [];
    text.split('\n').forEach((line, i) => {
      if (i > 0) out.push(el('br'));
      out.push(...(strict ? linked(line) : emojiNodes(line)));
    });
    return out;
  }

  function hhmm(t) {
    const d = new Date(t * 1000);
    return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  }

  function bareId(id) { return id.slice(id.lastIndexOf('_') + 1); }

  function domId(id) { return packed() ? id : bareId(id); }

  // A long text shows its first READ_MORE_AT characters and a "Read more" button outside the text span.
  function fillText(span, text, strict) {
    const chars = Array.from(text);
    const inner = el('span', {});
    const long = strict && chars.length > READ_MORE_AT;
    inner.append(...richText(long ? chars.slice(0, READ_MORE_AT).join('') : text, strict));
    span.replaceChildren(inner);
    if (!long) return null;
    const more = el('div', { role: 'button', tabindex: '0', class: 'read-more' }, 'Read more');
    more.addEventListener('click', () => {
      inner.replaceChildren(...richText(text, strict));
      more.remove();
    });
    return more;
  }

  function tailIcon(out) {
    const tail = out ? 'tail-out' : 'tail-in';
    return el('span', { 'data-icon': tail, class: 'tail' }, svg(tail, out ? 'M0 0h8v13z' : 'M8 0H0v13z'));
  }

  // m: {id (packed, from the server's point of view), direction: 'out'|'in', from, text, time, status}; every time
  // shown is the message's time shifted by clock_skew_s.
  function messageRow(m) {
    const p = prof();
    const out = m.direction !== 'in';
    const shown = m.time + P.skew;
    const d = new Date(shown * 1000);
    const who = out ? 'Me' : m.lid ? m.name : `+${m.from}`; // a contact who hides the number: its name
    const pre = `[${hhmm(shown)}, ${d.getMonth() + 1}/${d.getDate()}/${d.getFullYear()}] ${who}: `;
    // A media row shows its file; its caption (if any) is the text, the only part with data-pre-plain-text.
    const media = m.media ? mediaBlock(m.media, m.preview) : null;
    let copy = null;
    if (!media || m.text) {
      const span = el('span', { ...p.text, dir: 'ltr' });
      const more = fillText(span, m.text, P.strict);
      copy = el('div', { class: 'copyable-text', 'data-pre-plain-text': pre }, span);
      if (more) copy.append(more);
    }
    const meta = el('div', { class: 'meta' }, el('span', { class: 'time' }, hhmm(shown)));
    const classes = [out ? '_amk4' : '_amk6', 'focusable-list-item'];
    if (p.dirClass) classes.unshift(out ? 'message-out' : 'message-in');
    const id = domId(m.id);
    const bubble = el('div', { 'data-id': id, 'data-testid': p.testid ? `conv-msg-${id}` : null,
      class: classes.join(' ') });
    if (p.tails === true) bubble.append(tailIcon(out)); // 'run': retail() draws them once the row is in the list
    const link = P.strict && !media && URL.exec(m.text); // a link gets a preview thumbnail above the text, as on the real page
    if (link) bubble.append(el('img', { class: 'link-preview', alt: '', draggable: 'false',
      src: `/__sim__/preview/${[...link[0]].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) % 1000003, 7)}.jpg` }));
    if (media) bubble.append(media);
    if (copy) bubble.append(copy);
    bubble.append(meta);
    const row = el('div', { role: 'row', class: '_amjv' }, bubble); // one class for both directions
    row.__dir = out ? 'out' : 'in';
    if (out) setStatus(row, m.status || 'Pending');
    return row;
  }

  function kilobytes(size) {
    return size >= 1e6 ? `${(size / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(size / 1e3))} kB`;
  }

  // A media row's file, as the 2025-2026 senders read it (the DOM notes' media section): a photo under
  // aria-label="Open picture", a video with its play icon (msg-video in 2026-03), a document under
  // title='Download "<name>"' with its document-thumb, an audio file with its player and slider.
  function mediaBlock(media, preview) {
    const pic = () => el('img', { class: 'media-thumb', alt: '', draggable: 'false',
      src: preview || `/__sim__/preview/${parseInt(String(media.sha256 || '7').slice(0, 6), 16) || 7}.jpg` });
    if (media.kind === 'image' || media.kind === 'sticker') {
      return el('div', { role: 'button', 'aria-label': media.kind === 'image' ? 'Open picture' : 'Sticker',
        class: 'media-image' }, pic());
    }
    if (media.kind === 'video') {
      const icon = P.markup === '2026-03' ? 'msg-video' : 'media-play';
      return el('div', { role: 'button', 'aria-label': 'Play video', class: 'media-video' }, pic(),
        el('span', { 'data-icon': icon, class: 'play' }, svg(icon, 'M8 5v14l11-7z')));
    }
    if (media.kind === 'audio') {
      return el('div', { class: 'media-audio' },
        el('div', { role: 'button', 'aria-label': 'Play voice message' },
          el('span', { 'data-icon': 'audio-play' }, svg('audio-play', 'M8 5v14l11-7z'))),
        el('div', { role: 'slider', 'aria-valuetext': '0:00/0:07', 'aria-valuemin': '0', 'aria-valuemax': '7' }));
    }
    const name = String(media.filename || '');
    const ext = (name.includes('.') ? name.split('.').pop() : 'file').toUpperCase();
    return el('div', { role: 'button', title: `Download "${name}"`, class: 'media-document' },
      el('div', { 'data-testid': 'document-thumb' }, el('span', { 'data-icon': `document-${ext}-icon` },
        svg(`document-${ext}-icon`, 'M6 2h9l5 5v15H6z'))),
      el('span', { class: 'doc-name', dir: 'auto' }, name),
      el('span', { class: 'doc-meta' }, `${ext} • ${kilobytes(Number(media.size || 0))}`));
  }

  // Tails drawn on a run's first bubble only (profile tails: 'run'): a run is the consecutive message rows of one
  // direction; a system row ends it. Called after every change of the list.
  function retail(list) {
    if (prof().tails !== 'run') return;
    let prev = null;
    for (const row of list.children) {
      const dir = row.__dir || null;
      const bubble = row.firstElementChild;
      const tail = bubble ? bubble.querySelector(':scope > .tail') : null;
      const want = dir !== null && dir !== prev;
      if (want && !tail) bubble.prepend(tailIcon(dir === 'out'));
      else if (!want && tail) tail.remove();
      prev = dir;
    }
  }

  function setStatus(row, status) {
    if (row.__status === status) return;
    row.__status = status;
    const meta = row.querySelector('.meta');
    const old = meta.querySelector('.tick');
    const icon = statusIcon(status);
    if (old) old.replaceWith(icon);
    else meta.append(icon);
  }

  function markFailed(row, error) {
    row.querySelector('.meta').append(failedMark());
    row.firstElementChild.setAttribute('data-error', error);
  }

  // No data-pre-plain-text: not a message. Its id is a bare one in every profile.
  function systemRow() {
    const hex = Array.from(crypto.getRandomValues(new Uint8Array(10)), (b) => b.toString(16).padStart(2, '0'));
    const text = 'Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can '
      + 'read or listen to them.';
    return el('div', { role: 'row', class: '_amjv' },
      el('div', { 'data-id': hex.join('').toUpperCase(), class: 'system-msg' }, el('span', {}, text)));
  }

  window.SimRender = { el, svg, PROFILES, configure, packed, messageRow, retail, setStatus, markFailed, systemRow,
    domId, bareId };
})();
