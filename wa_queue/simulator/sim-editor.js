// The compose box. Strict: a Lexical-like editor that keeps its own model (a string) and renders it, so script
// edits of the DOM and untrusted events do nothing, and pastes and typed text land after the current script turn.
// Lenient: the old plain editor (text nodes, synchronous), for old tests and demos.
// Both return {text(), set(text), clear()}; opts: {delayMs, onChange(text), onSubmit()}.
(() => {
  'use strict';

  // Lexical's DOM: one <p> whose lines are <span data-lexical-text> separated by <br>. An empty editor, or text
  // ending in a line break, gets one more <br> that is not text: its parent's __lexicalLineBreak points at it.
  function renderModel(box, model) {
    const p = document.createElement('p');
    p.className = 'selectable-text copyable-text';
    p.setAttribute('dir', 'ltr');
    model.split('\n').forEach((line, i) => {
      if (i > 0) p.append(document.createElement('br'));
      if (!line) return;
      const span = document.createElement('span');
      span.setAttribute('data-lexical-text', 'true');
      span.textContent = line;
      p.append(span);
    });
    if (model === '' || model.endsWith('\n')) {
      const br = document.createElement('br');
      p.append(br);
      p.__lexicalLineBreak = br;
    }
    box.replaceChildren(p);
  }

  function selectAllIn(box) {
    const range = document.createRange();
    range.selectNodeContents(box);
    const sel = getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function caretToEnd(box) {
    const range = document.createRange();
    range.selectNodeContents(box.lastElementChild || box);
    range.collapse(false);
    const sel = getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function lexical(box, opts) {
    let model = '';
    let allSelected = false;
    let rendered = '';
    const queue = []; // edits waiting their turn, in arrival order: [{at, fn}]
    let lastAt = 0;
    let timer = null;

    function render() {
      renderModel(box, model);
      rendered = box.innerHTML;
      if (document.activeElement === box) (allSelected ? selectAllIn : caretToEnd)(box);
    }

    function edit(next) {
      allSelected = false;
      if (next === model) return;
      model = next;
      render();
      opts.onChange(model);
    }

    // A selection made by other means (a real drag, the browser's own select-all) counts as "all" too.
    function selectionCoversAll() {
      const sel = getSelection();
      if (!model || !sel.rangeCount || sel.isCollapsed || !box.contains(sel.getRangeAt(0).commonAncestorContainer)) {
        return false;
      }
      const squash = (s) => s.replace(/\s+/g, '');
      return squash(sel.toString()) === squash(model);
    }

    const insert = (text) => edit(allSelected ? text : model + text);
    const backspace = () => edit(allSelected || selectionCoversAll() ? '' : Array.from(model).slice(0, -1).join(''));

    function pump() {
      if (timer !== null || !queue.length) return;
      timer = setTimeout(() => {
        timer = null;
        while (queue.length && queue[0].at <= performance.now() + 1) queue.shift().fn();
        pump();
      }, Math.max(0, queue[0].at - performance.now()));
    }

    // Later, never in this script turn; and never before an edit that arrived earlier.
    function later(fn) {
      const at = Math.max(performance.now() + opts.delayMs + Math.random() * 100, lastAt);
      lastAt = at;
      queue.push({ at, fn });
      pump();
    }

    // Now if nothing is waiting, else right after what is.
    function inTurn(fn) {
      if (!queue.length) { fn(); return; }
      queue.push({ at: lastAt, fn });
      pump();
    }

    box.addEventListener('paste', (e) => { // Lexical reads clipboardData and does not look at isTrusted
      e.preventDefault();
      const text = (e.clipboardData ? e.clipboardData.getData('text/plain') : '').replace(/\r\n?/g, '\n');
      if (text) later(() => insert(text));
    });
    box.addEventListener('beforeinput', (e) => {
      e.preventDefault();
      if (!e.isTrusted) return; // a script's synthetic input is not the user's typing
      const t = e.inputType;
      if (t === 'insertText' || t === 'insertReplacementText') {
        const text = e.data ?? (e.dataTransfer ? e.dataTransfer.getData('text/plain') : '');
        if (text) later(() => insert(text.replace(/\r\n?/g, '\n')));
      } else if (t === 'insertLineBreak' || t === 'insertParagraph') inTurn(() => insert('\n'));
      else if (t === 'deleteContentBackward') inTurn(backspace);
    });
    box.addEventListener('keydown', (e) => {
      if (!e.isTrusted || e.isComposing) return;
      const key = e.key || '';
      if ((e.ctrlKey || e.metaKey) && !e.altKey && key.toLowerCase() === 'a') {
        e.preventDefault();
        inTurn(() => { allSelected = true; if (document.activeElement === box) selectAllIn(box); });
      } else if (key === 'Enter') {
        e.preventDefault();
        inTurn(e.shiftKey || !opts.enterSends ? () => insert('\n') : () => opts.onSubmit());
      } else if (key === 'Backspace') {
        e.preventDefault();
        inTurn(backspace);
      } else if (/^(Arrow|Home$|End$|Page)/.test(key)) allSelected = false;
    });
    box.addEventListener('mousedown', () => { allSelected = false; });
    // innerHTML, textContent, execCommand, appendChild...: the model wins and is shown again.
    new MutationObserver(() => {
      if (box.innerHTML !== rendered) render();
    }).observe(box, { childList: true, subtree: true, characterData: true });
    render();

    return {
      text: () => model,
      set: (text) => edit(text),
      clear: () => edit(''),
    };
  }

  // ---- lenient: the old editor, kept as text nodes so its textContent is the exact message --------------------
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

  function plain(box, opts) {
    const changed = () => opts.onChange(box.textContent);
    box.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter' || e.isComposing) return;
      e.preventDefault();
      if (e.shiftKey || !opts.enterSends) { insertPlain(box, '\n'); changed(); } else opts.onSubmit();
    });
    box.addEventListener('beforeinput', (e) => {
      const t = e.inputType;
      let text = null;
      if (t === 'insertText' || t === 'insertReplacementText') {
        text = e.data ?? (e.dataTransfer && e.dataTransfer.getData('text/plain'));
      } else if (t === 'insertLineBreak' || t === 'insertParagraph') text = '\n';
      else if (t === 'insertFromPaste' || t === 'insertFromDrop') text = e.dataTransfer ? e.dataTransfer.getData('text/plain') : '';
      if (text === null || text === undefined) return;
      e.preventDefault();
      insertPlain(box, text);
      changed();
    });
    box.addEventListener('paste', (e) => {
      e.preventDefault();
      insertPlain(box, e.clipboardData ? e.clipboardData.getData('text/plain') : '');
      changed();
    });
    box.addEventListener('input', () => {
      if (![...box.childNodes].every((n) => n.nodeType === Node.TEXT_NODE)) {
        box.textContent = plainText(box);
        caretToEnd(box);
      }
      changed();
    });
    return {
      text: () => box.textContent,
      set: (text) => { box.textContent = text; changed(); },
      clear: () => { box.textContent = ''; changed(); },
    };
  }

  window.SimEditor = { lexical, plain, caretToEnd };
})();
