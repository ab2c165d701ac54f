(() => {
  'use strict';
  // Sealmail envelope page, format version 1 (docs/ENVELOPE-FORMAT.md). No network, ever.
  const $ = (id) => document.getElementById(id);
  const MAGIC = [0x89, 0x53, 0x4d, 0x45, 0x4e, 0x56, 0x0d, 0x0a];
  const TAG = 16;
  const ITERATIONS = 600000;
  const CHUNK = 1048576;
  const MAX_REPLY = 25 * 1024 * 1024;
  const KIND_ENVELOPE = 1, KIND_REPLY = 2;
  const enc = new TextEncoder();
  const dec = new TextDecoder('utf-8', { fatal: true });

  class EnvelopeError extends Error {
    constructor(code, text) { super(text); this.code = code; }
  }
  const damaged = () => new EnvelopeError('damaged',
    'This file is damaged or incomplete. Ask the sender to send it again.');

  // Read the payload, then keep a pristine copy of the page (with an empty payload) as the
  // template for reply envelopes.
  const payloadEl = $('sealmail-payload');
  let payloadText = payloadEl.textContent;
  payloadEl.textContent = '';
  const template = document.documentElement.cloneNode(true);

  const tick = () => new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => resolve();
    ch.port2.postMessage(0);
  });

  function setStatus(el, text, cls) {
    el.textContent = text;
    el.className = cls || '';
  }
  function progress(fraction) {
    const p = $('progress');
    p.hidden = fraction === null;
    if (fraction !== null) p.value = fraction;
  }

  function b64small(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function b64decode(s, onProgress) {
    if (/[^A-Za-z0-9+/=]/.test(s)) s = s.replace(/\s+/g, '');
    if (s.length === 0 || s.length % 4 !== 0) throw damaged();
    const pad = s.endsWith('==') ? 2 : (s.endsWith('=') ? 1 : 0);
    const out = new Uint8Array(s.length / 4 * 3 - pad);
    const step = 4 * 262144;
    let o = 0;
    for (let i = 0; i < s.length; i += step) {
      let bytes;
      try { bytes = b64small(s.slice(i, i + step)); } catch (e) { throw damaged(); }
      if (o + bytes.length > out.length) throw damaged();
      out.set(bytes, o);
      o += bytes.length;
      onProgress(Math.min(1, (i + step) / s.length));
      await tick();
    }
    if (o !== out.length) throw damaged();
    return out;
  }

  async function b64encode(bytes, onProgress) {
    const parts = [];
    const step = 3 * 262144;
    for (let i = 0; i < bytes.length; i += step) {
      const sub = bytes.subarray(i, i + step);
      let bin = '';
      for (let j = 0; j < sub.length; j += 0x8000) {
        bin += String.fromCharCode.apply(null, sub.subarray(j, j + 0x8000));
      }
      parts.push(btoa(bin));
      onProgress(Math.min(1, (i + step) / bytes.length));
      await tick();
    }
    return parts.join('');
  }

  function parseContainer(buf) {
    if (buf.length < 12) throw damaged();
    for (let i = 0; i < 8; i++) if (buf[i] !== MAGIC[i]) throw damaged();
    if (buf[8] !== 1) {
      throw new EnvelopeError('version',
        'This secure message was made by a newer version of Sealmail. Ask the sender for an updated envelope.');
    }
    const kind = buf[9];
    if (kind !== KIND_ENVELOPE && kind !== KIND_REPLY) throw damaged();
    const hlen = (buf[10] << 8) | buf[11];
    if (hlen === 0 || hlen > 4096 || 12 + hlen > buf.length) throw damaged();
    let h;
    try { h = JSON.parse(dec.decode(buf.subarray(12, 12 + hlen))); } catch (e) { throw damaged(); }
    const ok = h && h.kdf === 'pbkdf2-sha256' && h.cipher === 'aes-256-gcm' &&
      Number.isInteger(h.iterations) && h.iterations >= 600000 && h.iterations <= 10000000 &&
      Number.isInteger(h.chunk_size) && h.chunk_size >= 1024 && h.chunk_size <= 16 * CHUNK &&
      typeof h.salt === 'string' && typeof h.nonce_prefix === 'string' && typeof h.check === 'string';
    if (!ok) throw damaged();
    let salt, prefix, check;
    try { salt = b64small(h.salt); prefix = b64small(h.nonce_prefix); check = b64small(h.check); } catch (e) { throw damaged(); }
    if (salt.length !== 16 || prefix.length !== 7 || check.length !== 32) throw damaged();
    const body = buf.subarray(12 + hlen);
    const sealed = h.chunk_size + TAG;
    const rest = body.length % sealed;
    if (body.length < TAG || (rest > 0 && rest < TAG)) throw damaged();
    return { kind, iterations: h.iterations, chunkSize: h.chunk_size, salt, prefix, check,
      aad: buf.slice(0, 12 + hlen), body };
  }

  function normalizePassword(pw) { return pw.normalize('NFKC').trim(); }

  async function deriveKeys(password, salt, iterations) {
    const pwKey = await crypto.subtle.importKey('raw', enc.encode(normalizePassword(password)),
      'PBKDF2', false, ['deriveBits']);
    const master = await crypto.subtle.deriveBits(
      { name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, pwKey, 256);
    const hk = await crypto.subtle.importKey('raw', master, 'HKDF', false, ['deriveBits']);
    const hkdf = (info) => crypto.subtle.deriveBits(
      { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: enc.encode(info) }, hk, 256);
    const keyBits = await hkdf('sealmail-envelope v1 key');
    const check = new Uint8Array(await hkdf('sealmail-envelope v1 check'));
    const key = await crypto.subtle.importKey('raw', keyBits, 'AES-GCM', false, ['encrypt', 'decrypt']);
    return { key, check };
  }

  function nonce(prefix, index, last) {
    const n = new Uint8Array(12);
    n.set(prefix, 0);
    new DataView(n.buffer).setUint32(7, index, false);
    n[11] = last ? 1 : 0;
    return n;
  }

  function sameBytes(a, b) {
    if (a.length !== b.length) return false;
    let d = 0;
    for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
    return d === 0;
  }

  async function decryptBody(c, key, onProgress) {
    const sealed = c.chunkSize + TAG;
    const n = Math.max(1, Math.ceil(c.body.length / sealed));
    const parts = [];
    for (let i = 0; i < n; i++) {
      const last = i === n - 1;
      const piece = c.body.subarray(i * sealed, Math.min((i + 1) * sealed, c.body.length));
      let pt;
      try {
        pt = await crypto.subtle.decrypt(
          { name: 'AES-GCM', iv: nonce(c.prefix, i, last), additionalData: c.aad, tagLength: 128 },
          key, piece);
      } catch (e) {
        throw new EnvelopeError('tampered',
          'This file was changed after it was sealed, so it cannot be trusted and was not opened. Ask the sender to send it again.');
      }
      parts.push(new Uint8Array(pt));
      onProgress((i + 1) / n);
      if (i % 2 === 1) await tick();
    }
    return parts;
  }

  // A view of the plaintext (a list of chunks) as byte ranges.
  function ranges(parts, chunkSize, start, length) {
    const out = [];
    let idx = Math.floor(start / chunkSize), off = start % chunkSize, left = length;
    while (left > 0) {
      if (idx >= parts.length) throw damaged();
      const take = Math.min(left, parts[idx].length - off);
      if (take <= 0) throw damaged();
      out.push(parts[idx].subarray(off, off + take));
      left -= take; idx++; off = 0;
    }
    return out;
  }
  function joinBytes(list) {
    const total = list.reduce((a, b) => a + b.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const b of list) { out.set(b, o); o += b.length; }
    return out;
  }

  function readContents(parts, chunkSize) {
    const total = parts.reduce((a, b) => a + b.length, 0);
    if (total < 4) throw damaged();
    const head = joinBytes(ranges(parts, chunkSize, 0, 4));
    const mlen = new DataView(head.buffer).getUint32(0, false);
    if (4 + mlen > total) throw damaged();
    let m;
    try { m = JSON.parse(dec.decode(joinBytes(ranges(parts, chunkSize, 4, mlen)))); } catch (e) { throw damaged(); }
    if (!m || typeof m.message !== 'string' || !Array.isArray(m.files)) throw damaged();
    let offset = 4 + mlen;
    const files = [];
    for (const f of m.files) {
      if (!f || typeof f.name !== 'string' || !Number.isInteger(f.size) || f.size < 0) throw damaged();
      if (offset + f.size > total) throw damaged();
      files.push({ name: safeName(f.name), size: f.size, data: ranges(parts, chunkSize, offset, f.size) });
      offset += f.size;
    }
    if (offset !== total) throw damaged();
    return { manifest: m, files };
  }

  function safeName(name) {
    const cleaned = name.replace(/[\u0000-\u001f\u007f/\\]/g, '_').slice(0, 255);
    return (cleaned === '' || cleaned === '.' || cleaned === '..') ? 'attachment' : cleaned;
  }
  function humanSize(n) {
    if (n < 1024) return n + ' bytes';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KB';
    return (n / 1048576).toFixed(1) + ' MB';
  }

  let container = null;
  let opened = null;
  let password = null;

  function showContents(result) {
    const m = result.manifest;
    $('message').textContent = m.message;
    const meta = [];
    if (m.from) meta.push('From: ' + m.from);
    if (m.to) meta.push('To: ' + m.to);
    if (m.subject) meta.push('Subject: ' + m.subject);
    if (m.created) meta.push('Sealed: ' + m.created);
    $('meta').textContent = meta.join(' \u00b7 ');
    const list = $('files');
    list.textContent = '';
    for (const f of result.files) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob(f.data, { type: 'application/octet-stream' }));
      a.download = f.name;
      a.textContent = f.name;
      a.className = 'file';
      li.appendChild(a);
      li.appendChild(document.createTextNode(' (' + humanSize(f.size) + ')'));
      list.appendChild(li);
    }
    $('files-box').hidden = result.files.length === 0;
    $('content').hidden = false;
    $('unlock').hidden = true;
    $('intro').hidden = true;
    if (container.kind === KIND_ENVELOPE) $('reply').hidden = false;
  }

  async function onOpen(ev) {
    ev.preventDefault();
    const status = $('status');
    const pw = $('password').value;
    if (normalizePassword(pw) === '') { setStatus(status, 'Please type the password.', 'error'); return; }
    $('open').disabled = true;
    try {
      if (container === null) {
        setStatus(status, 'Reading the secure message\u2026');
        const bytes = await b64decode(payloadText, (f) => progress(f));
        payloadText = null;
        container = parseContainer(bytes);
      }
      setStatus(status, 'Checking the password\u2026');
      progress(0);
      const keys = await deriveKeys(pw, container.salt, container.iterations);
      if (!sameBytes(keys.check, container.check)) {
        throw new EnvelopeError('password',
          'That password is not correct. Check it with the sender and try again (capital letters and spaces matter).');
      }
      setStatus(status, 'Unlocking\u2026');
      const parts = await decryptBody(container, keys.key, (f) => progress(f));
      opened = readContents(parts, container.chunkSize);
      password = pw;
      progress(null);
      setStatus(status, 'The message is unlocked. It was checked and has not been changed.', 'ok');
      showContents(opened);
    } catch (e) {
      progress(null);
      const text = e instanceof EnvelopeError ? e.message
        : 'The message could not be opened in this browser. Try a current version of Firefox, Chrome, Edge or Safari.';
      setStatus(status, text, 'error');
      $('password').value = '';
      $('password').focus();
    } finally {
      $('open').disabled = false;
    }
  }

  function randomBytes(n) { return crypto.getRandomValues(new Uint8Array(n)); }
  function b64bytes(u8) { let s = ''; for (const b of u8) s += String.fromCharCode(b); return btoa(s); }
  function hex(u8) { return Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join(''); }

  async function sealReply(text, files, onProgress) {
    const m = opened.manifest;
    const manifest = enc.encode(JSON.stringify({
      message: text,
      files: files.map((f) => ({ name: f.name, size: f.data.length, type: f.type })),
      from: m.to || null,
      to: m.from || null,
      subject: 'Re: ' + (m.subject || 'secure message'),
      created: new Date().toISOString(),
      id: hex(randomBytes(16)),
      in_reply_to: m.id || null,
    }));
    const lenBytes = new Uint8Array(4);
    new DataView(lenBytes.buffer).setUint32(0, manifest.length, false);
    const plain = joinBytes([lenBytes, manifest, ...files.map((f) => f.data)]);
    const salt = randomBytes(16), prefix = randomBytes(7);
    const keys = await deriveKeys(password, salt, ITERATIONS);
    const header = enc.encode(JSON.stringify({
      kdf: 'pbkdf2-sha256', iterations: ITERATIONS, salt: b64bytes(salt), cipher: 'aes-256-gcm',
      chunk_size: CHUNK, nonce_prefix: b64bytes(prefix), check: b64bytes(keys.check),
    }));
    const aad = new Uint8Array(12 + header.length);
    aad.set(MAGIC, 0); aad[8] = 1; aad[9] = KIND_REPLY;
    aad[10] = header.length >> 8; aad[11] = header.length & 0xff;
    aad.set(header, 12);
    const n = Math.max(1, Math.ceil(plain.length / CHUNK));
    const out = [aad];
    for (let i = 0; i < n; i++) {
      const ct = await crypto.subtle.encrypt(
        { name: 'AES-GCM', iv: nonce(prefix, i, i === n - 1), additionalData: aad, tagLength: 128 },
        keys.key, plain.subarray(i * CHUNK, (i + 1) * CHUNK));
      out.push(new Uint8Array(ct));
      onProgress((i + 1) / n / 2);
      if (i % 2 === 1) await tick();
    }
    const b64 = await b64encode(joinBytes(out), (f) => onProgress(0.5 + f / 2));
    const page = template.cloneNode(true);
    page.querySelector('#sealmail-payload').textContent = b64;
    return '<!DOCTYPE html>\n' + page.outerHTML;
  }

  async function onReply() {
    const status = $('reply-status');
    const button = $('reply-make');
    const chosen = Array.from($('reply-files').files);
    const total = chosen.reduce((a, f) => a + f.size, 0);
    if (total > MAX_REPLY) { setStatus(status, 'The files are larger than 25 MB in total. Please send fewer or smaller files.', 'error'); return; }
    const text = $('reply-text').value;
    if (text.trim() === '' && chosen.length === 0) { setStatus(status, 'Please write a reply or choose a file.', 'error'); return; }
    button.disabled = true;
    try {
      setStatus(status, 'Locking your reply\u2026');
      const files = [];
      const seen = new Set();
      for (const f of chosen) {
        let name = safeName(f.name);
        while (seen.has(name.toLowerCase())) name = '_' + name;
        seen.add(name.toLowerCase());
        files.push({ name, type: f.type || 'application/octet-stream', data: new Uint8Array(await f.arrayBuffer()) });
      }
      const html = await sealReply(text, files, (f) => progress(f));
      progress(null);
      const link = $('reply-download');
      if (link.href.startsWith('blob:')) URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(new Blob([html], { type: 'text/html' }));
      const m = opened.manifest;
      const body = 'Hello,\n\nI have attached my secure reply (the file secure-reply.html). ' +
        'Open it with the password we agreed on.\n';
      const to = typeof m.from === 'string' && /^[^\s@<>"]+@[^\s@<>"]+$/.test(m.from) ? m.from : '';
      $('reply-mailto').href = 'mailto:' + encodeURIComponent(to).replace(/%40/g, '@') +
        '?subject=' + encodeURIComponent('Re: ' + (m.subject || 'secure message')) +
        '&body=' + encodeURIComponent(body);
      $('reply-done').hidden = false;
      setStatus(status, 'Your secure reply is ready.', 'ok');
    } catch (e) {
      progress(null);
      setStatus(status, 'The reply could not be created in this browser.', 'error');
    } finally {
      button.disabled = false;
    }
  }

  // Adapt the words to what this file is before anything is decrypted.
  try {
    const head = b64small((payloadText || '').replace(/\s+/g, '').slice(0, 16));
    if (head.length >= 10 && head[9] === KIND_REPLY) {
      $('title').textContent = 'You have received a secure reply';
      $('intro-what').textContent = 'This file is a locked, encrypted reply to a secure message you sent. Type the password you agreed on with the recipient.';
    }
  } catch (e) { /* the full check happens on Open */ }

  if (!window.crypto || !crypto.subtle) {
    setStatus($('status'), 'This browser cannot open secure messages. Use a current version of Firefox, Chrome, Edge or Safari.', 'error');
  }
  $('unlock').addEventListener('submit', onOpen);
  $('reply-make').addEventListener('click', onReply);
})();
