// Markdown for model answers, rendered safely. Model output is untrusted, so this module never
// produces markup: it parses the text itself and builds every element with `h()`, so raw HTML in
// the answer shows up as the literal text it is, links go through `safeHref` (anything that is
// not http(s), mailto or relative becomes plain text), and images become links (never `<img>`,
// which would load a resource chosen by the model).
//
// It covers what chat answers use: ATX and setext headings, paragraphs, emphasis (strong, em,
// strikethrough), inline code, fenced code blocks, bullet, numbered and task lists (nested),
// GFM tables with alignment, blockquotes, horizontal rules, links, autolinks and bare URLs.
// Indented code blocks are deliberately not supported: models indent prose and list
// continuations far more often than they mean "code", and fences are what they use for code.
//
// It is written to be re-run on every streamed token: an unclosed fence simply runs to the end,
// and pathological input (thousands of unmatched `*`, deep nesting) stays linear-ish and bounded.

import { h, safeHref } from './dom.js';

/** Deepest nesting of blockquotes and lists rendered as structure; deeper is plain text. */
const MAX_DEPTH = 16;

/**
 * Render `text` as Markdown into a new `div.markdown`. Every string from `text` ends up as a
 * text node; the only attributes set are classes, checked `href`s and checkbox state.
 */
export function renderMarkdown(text) {
  const lines = String(text ?? '').replace(/\r\n?/g, '\n').split('\n');
  return h('div', { class: 'markdown' }, parseBlocks(lines, 0));
}

// ---------------------------------------------------------------------------------------------
// Blocks

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)?.*$/;
const ATX = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const HR = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const SETEXT = /^ {0,3}(=+|-+)[ \t]*$/;
const QUOTE = /^ {0,3}> ?/;
const BULLET = /^( {0,3})([-*+])([ \t]+|$)/;
const ORDERED = /^( {0,3})(\d{1,9})([.)])([ \t]+|$)/;
const TABLE_DELIMITER = /^ {0,3}\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

const isBlank = (line) => /^\s*$/.test(line);

/** Parse `lines` into block elements. */
function parseBlocks(lines, depth) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i += 1;
      continue;
    }
    let m;
    if ((m = FENCE.exec(line)) && !(m[1][0] === '`' && line.slice(line.indexOf('`') + m[1].length).includes('`'))) {
      i = fencedCode(lines, i, m, out);
    } else if ((m = ATX.exec(line))) {
      out.push(heading(m[1].length, m[2] || ''));
      i += 1;
    } else if (HR.test(line)) {
      out.push(h('hr'));
      i += 1;
    } else if (QUOTE.test(line)) {
      i = blockquote(lines, i, depth, out);
    } else if (listMarker(line)) {
      i = list(lines, i, depth, out);
    } else if (startsTable(lines, i)) {
      i = table(lines, i, out);
    } else {
      i = paragraph(lines, i, out);
    }
  }
  return out;
}

/** A GFM table starts with a row of cells and a delimiter row with as many columns. */
function startsTable(lines, i) {
  return i + 1 < lines.length && lines[i].includes('|') && TABLE_DELIMITER.test(lines[i + 1])
    && splitRow(lines[i + 1]).length === splitRow(lines[i]).length;
}

function heading(level, text) {
  return h(`h${level}`, { class: 'md-heading' }, parseInline(text.trim()));
}

function fencedCode(lines, start, match, out) {
  const fence = match[1];
  const indent = lines[start].length - lines[start].trimStart().length;
  const language = (match[2] || '').replace(/[^A-Za-z0-9_+#.-]/g, '').slice(0, 32);
  const closing = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}[ \\t]*$`);
  const body = [];
  let i = start + 1;
  while (i < lines.length && !closing.test(lines[i])) {
    // Content lines lose up to the opening fence's indentation, as in CommonMark.
    const line = lines[i];
    const strip = Math.min(indent, line.length - line.trimStart().length);
    body.push(line.slice(strip));
    i += 1;
  }
  out.push(codeBlock(body.join('\n'), language));
  return i + 1; // past the closing fence (or the end, for an unclosed fence)
}

/** A code block with its language and a copy button. */
function codeBlock(code, language) {
  const copy = h('button', {
    type: 'button',
    class: 'md-copy link-button',
    title: 'Copy the code to the clipboard',
    on: {
      click: async () => {
        try {
          await navigator.clipboard.writeText(code);
          copy.textContent = 'Copied';
        } catch {
          copy.textContent = 'Copy failed';
        }
        setTimeout(() => { copy.textContent = 'Copy'; }, 1500);
      },
    },
  }, 'Copy');
  return h('div', { class: 'md-code' },
    h('div', { class: 'md-code-bar' }, h('span', { class: 'md-code-lang' }, language || 'text'), copy),
    h('pre', {}, h('code', { class: language ? `language-${language}` : null }, code)));
}

function blockquote(lines, start, depth, out) {
  const inner = [];
  let i = start;
  while (i < lines.length) {
    const line = lines[i];
    if (QUOTE.test(line)) {
      inner.push(line.replace(QUOTE, ''));
    } else if (!isBlank(line) && inner.length > 0 && !isBlank(inner[inner.length - 1])
      && !startsBlock(line)) {
      inner.push(line); // lazy continuation of a quoted paragraph
    } else {
      break;
    }
    i += 1;
  }
  if (depth >= MAX_DEPTH) {
    out.push(h('p', {}, inner.join('\n')));
  } else {
    out.push(h('blockquote', {}, parseBlocks(inner, depth + 1)));
  }
  return i;
}

/**
 * `{ordered, start, indent, contentIndent, delimiter, rest}` when `line` opens a list item;
 * `rest` is the item's text on that line.
 */
function listMarker(line) {
  let m = BULLET.exec(line);
  if (m) {
    const spaces = m[3].length > 4 ? 1 : Math.max(m[3].length, 1);
    return {
      ordered: false,
      delimiter: m[2],
      indent: m[1].length,
      contentIndent: m[1].length + 1 + spaces,
      rest: line.slice(m[1].length + 1 + Math.min(spaces, m[3].length)),
    };
  }
  m = ORDERED.exec(line);
  if (m) {
    const spaces = m[4].length > 4 ? 1 : Math.max(m[4].length, 1);
    return {
      ordered: true,
      delimiter: m[3],
      start: Number(m[2]),
      indent: m[1].length,
      contentIndent: m[1].length + m[2].length + 1 + spaces,
      rest: line.slice(m[1].length + m[2].length + 1 + Math.min(spaces, m[4].length)),
    };
  }
  return null;
}

function startsBlock(line) {
  return FENCE.test(line) || ATX.test(line) || HR.test(line) || QUOTE.test(line) || listMarker(line) !== null;
}

/** Strip `count` columns of leading spaces (tabs count as 4). */
function dedent(line, count) {
  let col = 0;
  let i = 0;
  while (i < line.length && col < count) {
    if (line[i] === ' ') col += 1;
    else if (line[i] === '\t') col += 4;
    else break;
    i += 1;
  }
  return line.slice(i);
}

function leadingColumns(line) {
  let col = 0;
  for (const ch of line) {
    if (ch === ' ') col += 1;
    else if (ch === '\t') col += 4;
    else break;
  }
  return col;
}

function list(lines, start, depth, out) {
  const first = listMarker(lines[start]);
  const items = [];
  let loose = false;
  let i = start;
  while (i < lines.length) {
    const marker = listMarker(lines[i]);
    if (!marker || marker.ordered !== first.ordered || marker.delimiter !== first.delimiter
      || marker.indent >= first.contentIndent) break;
    // The item: its first line after the marker, then every line indented to its content, blank
    // lines inside it, and lazy continuation lines of its last paragraph.
    const body = [marker.rest];
    i += 1;
    let sawBlank = false;
    while (i < lines.length) {
      const line = lines[i];
      if (isBlank(line)) {
        sawBlank = true;
        body.push('');
        i += 1;
        continue;
      }
      if (leadingColumns(line) >= marker.contentIndent) {
        if (sawBlank && body.some((l) => !isBlank(l))) loose = loose || !listMarker(dedent(line, marker.contentIndent));
        body.push(dedent(line, marker.contentIndent));
        sawBlank = false;
        i += 1;
        continue;
      }
      if (!sawBlank && !startsBlock(line)) {
        body.push(line.trimStart());
        i += 1;
        continue;
      }
      break;
    }
    while (body.length > 0 && isBlank(body[body.length - 1])) body.pop();
    // A blank line between items makes the list loose, if another item follows.
    if (sawBlank && i < lines.length) {
      const next = listMarker(lines[i]);
      if (next && next.ordered === first.ordered && next.delimiter === first.delimiter) loose = true;
    }
    items.push(body);
  }
  const rendered = items.map((body) => listItem(body, depth, loose));
  const attrs = first.ordered && first.start !== 1 ? { start: first.start } : {};
  out.push(first.ordered ? orderedList(attrs, rendered) : h('ul', {}, rendered));
  return i;
}

// `start` is not in dom.js's attribute allowlist; set it through the DOM property instead.
function orderedList(attrs, items) {
  const ol = h('ol', {}, items);
  if (attrs.start !== undefined) ol.start = attrs.start;
  return ol;
}

function listItem(body, depth, loose) {
  let lines = body;
  let task = null;
  const m = /^\[([ xX])\][ \t]+/.exec(lines[0] || '');
  if (m) {
    task = m[1] !== ' ';
    lines = [lines[0].slice(m[0].length), ...lines.slice(1)];
  }
  let content;
  if (depth >= MAX_DEPTH) {
    content = [lines.join('\n')];
  } else {
    content = parseBlocks(lines, depth + 1);
    if (!loose) {
      // Tight lists show their paragraphs without paragraph spacing.
      content = content.flatMap((el) => (el.tagName === 'P' ? [...el.childNodes] : [el]));
    }
  }
  if (task === null) return h('li', {}, content);
  return h('li', { class: 'md-task' }, h('input', { type: 'checkbox', disabled: true, checked: task }), ' ', content);
}

function paragraph(lines, start, out) {
  const text = [lines[start]];
  let i = start + 1;
  while (i < lines.length && !isBlank(lines[i])) {
    const line = lines[i];
    const setext = SETEXT.exec(line);
    if (setext) {
      out.push(heading(setext[1][0] === '=' ? 1 : 2, text.join('\n')));
      return i + 1;
    }
    if (startsBlock(line) || startsTable(lines, i)) break;
    text.push(line);
    i += 1;
  }
  out.push(h('p', {}, parseInline(text.map((l) => l.trimStart()).join('\n'))));
  return i;
}

/** Cells of a table row: split on pipes that are neither escaped nor inside a code span. */
function splitRow(line) {
  let row = line.trim();
  if (row.startsWith('|')) row = row.slice(1);
  if (row.endsWith('|') && !row.endsWith('\\|')) row = row.slice(0, -1);
  const cells = [];
  let current = '';
  let inCode = 0;
  for (let i = 0; i < row.length; i += 1) {
    const ch = row[i];
    if (ch === '\\' && row[i + 1] === '|') {
      current += '|';
      i += 1;
    } else if (ch === '`') {
      let run = 1;
      while (row[i + run] === '`') run += 1;
      inCode = inCode === run ? 0 : inCode || run;
      current += '`'.repeat(run);
      i += run - 1;
    } else if (ch === '|' && !inCode) {
      cells.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  cells.push(current.trim());
  return cells;
}

function table(lines, start, out) {
  const header = splitRow(lines[start]);
  const aligns = splitRow(lines[start + 1]).map((cell) => {
    const left = cell.startsWith(':');
    const right = cell.endsWith(':');
    if (left && right) return 'md-align-center';
    if (right) return 'md-align-right';
    if (left) return 'md-align-left';
    return null;
  });
  const rows = [];
  let i = start + 2;
  while (i < lines.length && !isBlank(lines[i]) && lines[i].includes('|') && !startsBlock(lines[i])) {
    rows.push(splitRow(lines[i]));
    i += 1;
  }
  const cell = (tag, text, col) => h(tag, { class: aligns[col] }, parseInline(text ?? ''));
  out.push(h('div', { class: 'md-table-wrap' }, h('table', { class: 'md-table' },
    h('thead', {}, h('tr', {}, header.map((text, col) => cell('th', text, col)))),
    rows.length ? h('tbody', {}, rows.map((row) => h('tr', {}, header.map((_, col) => cell('td', row[col], col))))) : null)));
  return i;
}

// ---------------------------------------------------------------------------------------------
// Inlines

const PUNCTUATION = /[!-/:-@[-`{-~]/;
const BARE_URL = /^(?:https?:\/\/|mailto:)[^\s<>"'`]+/i;

/**
 * Parse inline Markdown into nodes. `failed` remembers, per delimiter, the position from which a
 * search for its closer already failed: a later opener cannot do better, which keeps a text
 * full of unmatched `*` linear instead of quadratic.
 */
function parseInline(text, depth = 0) {
  const nodes = [];
  const failed = new Map();
  let buffer = '';
  const flush = () => {
    if (buffer) nodes.push(document.createTextNode(buffer));
    buffer = '';
  };
  const push = (node) => {
    flush();
    nodes.push(node);
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '\\' && i + 1 < text.length) {
      if (text[i + 1] === '\n') {
        push(h('br'));
        i += 2;
        continue;
      }
      if (PUNCTUATION.test(text[i + 1])) {
        buffer += text[i + 1];
        i += 2;
        continue;
      }
    }
    if (ch === '\n') {
      // Two trailing spaces make a hard break; otherwise a soft break (a space when rendered).
      if (buffer.endsWith('  ')) {
        buffer = buffer.replace(/ +$/, '');
        push(h('br'));
      } else {
        buffer = buffer.replace(/ +$/, '');
        buffer += '\n';
      }
      i += 1;
      continue;
    }
    if (ch === '`') {
      const span = codeSpan(text, i);
      if (span) {
        push(h('code', { class: 'md-inline-code' }, span.code));
        i = span.end;
      } else {
        let run = 1;
        while (text[i + run] === '`') run += 1;
        buffer += '`'.repeat(run);
        i += run;
      }
      continue;
    }
    if (ch === '!' && text[i + 1] === '[') {
      const link = linkAt(text, i + 1, failed);
      if (link) {
        push(imageAsLink(link));
        i = link.end;
        continue;
      }
    }
    if (ch === '[') {
      const link = linkAt(text, i, failed);
      if (link) {
        push(anchor(link.href, depth < MAX_DEPTH ? parseInline(link.label, depth + 1) : [link.label], link.title));
        i = link.end;
        continue;
      }
    }
    if (ch === '<') {
      const m = /^<((?:https?:\/\/|mailto:)[^\s<>]+|[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+)>/i.exec(text.slice(i, i + 2048));
      if (m) {
        const target = m[1].includes(':') ? m[1] : `mailto:${m[1]}`;
        push(anchor(target, [m[1]]));
        i += m[0].length;
        continue;
      }
    }
    if ((ch === 'h' || ch === 'H' || ch === 'm' || ch === 'M') && !/[A-Za-z0-9]$/.test(buffer)) {
      const m = BARE_URL.exec(text.slice(i, i + 2048));
      if (m) {
        const url = trimUrl(m[0]);
        push(anchor(url, [url]));
        i += url.length;
        continue;
      }
    }
    if (ch === '*' || ch === '_' || (ch === '~' && text[i + 1] === '~')) {
      const emphasis = emphasisAt(text, i, failed);
      if (emphasis) {
        const inner = depth < MAX_DEPTH ? parseInline(emphasis.content, depth + 1) : [emphasis.content];
        push(wrapEmphasis(emphasis.kind, inner));
        i = emphasis.end;
        continue;
      }
      let run = 1;
      while (text[i + run] === ch) run += 1;
      buffer += ch.repeat(run);
      i += run;
      continue;
    }
    buffer += ch;
    i += 1;
  }
  flush();
  return nodes;
}

/** A code span starting at `start`: the matching run of backticks closes it. */
function codeSpan(text, start) {
  let run = 1;
  while (text[start + run] === '`') run += 1;
  const fence = '`'.repeat(run);
  let from = start + run;
  for (;;) {
    const close = text.indexOf(fence, from);
    if (close < 0) return null;
    let after = close + run;
    if (text[after] === '`') {
      while (text[after] === '`') after += 1;
      from = after;
      continue;
    }
    let code = text.slice(start + run, close).replace(/\n/g, ' ');
    if (/^ .* $/.test(code) && code.trim() !== '') code = code.slice(1, -1);
    return { code, end: after };
  }
}

/**
 * `[label](destination "title")` starting at the `[` at `start`: `{label, href, title, end}`,
 * or null when it is not a link (the brackets are then literal text).
 */
function linkAt(text, start, failed) {
  if ((failed.get(']') ?? Infinity) <= start) return null;
  let depth = 0;
  let i = start;
  let close = -1;
  for (; i < text.length; i += 1) {
    const ch = text[i];
    if (ch === '\\') {
      i += 1;
    } else if (ch === '`') {
      const span = codeSpan(text, i);
      if (span) i = span.end - 1;
    } else if (ch === '[') {
      depth += 1;
    } else if (ch === ']') {
      depth -= 1;
      if (depth === 0) {
        close = i;
        break;
      }
    }
  }
  if (close < 0) {
    failed.set(']', start);
    return null;
  }
  if (text[close + 1] !== '(') return null;
  const rest = text.slice(close + 2, close + 2 + 4096);
  const m = /^[ \t\n]*(?:<([^<>\n]*)>|((?:[^\s()\\]|\\.|\((?:[^\s()\\]|\\.)*\))*))(?:[ \t\n]+("[^"]*"|'[^']*'|\([^)]*\)))?[ \t\n]*\)/.exec(rest);
  if (!m) return null;
  const destination = (m[1] ?? m[2] ?? '').replace(/\\([!-/:-@[-`{-~])/g, '$1');
  return {
    label: text.slice(start + 1, close),
    href: destination,
    title: m[3] ? m[3].slice(1, -1) : null,
    end: close + 2 + m[0].length,
  };
}

/** A link whose target passed `safeHref`, or just its text when the target is refused. */
function anchor(target, children, title = null) {
  const href = safeHref(target);
  if (href === null) return h('span', { class: 'md-unsafe-link', title: 'link removed: only http, https and mailto links are allowed' }, children);
  return h('a', { href, title }, children);
}

/** Images never load: they become a link to the image (when its URL is allowed) or text. */
function imageAsLink(link) {
  const label = `[image: ${link.label || 'untitled'}]`;
  const href = safeHref(link.href);
  if (href === null) return h('span', { class: 'md-image' }, label);
  return h('a', { href, class: 'md-image', title: link.title || href }, label);
}

/** Bare URLs do not take trailing punctuation or an unbalanced closing parenthesis. */
function trimUrl(url) {
  let out = url.replace(/[.,:;!?'"*_~]+$/, '');
  while (out.endsWith(')') && (out.match(/\(/g) || []).length < (out.match(/\)/g) || []).length) {
    out = out.slice(0, -1).replace(/[.,:;!?'"*_~]+$/, '');
  }
  return out;
}

const isSpace = (ch) => ch === undefined || /\s/.test(ch);
const isWord = (ch) => ch !== undefined && /[\p{L}\p{N}]/u.test(ch);

/**
 * Emphasis opened by the delimiter run at `start`: `{kind, content, end}` or null. `**`/`__`
 * are strong, `*`/`_` emphasis, `~~` strikethrough; `***x***` is strong around emphasis. `_`
 * inside a word (snake_case) is never emphasis.
 */
function emphasisAt(text, start, failed) {
  const ch = text[start];
  let run = 1;
  while (text[start + run] === ch) run += 1;
  const before = text[start - 1];
  const after = text[start + run];
  if (isSpace(after)) return null; // not left-flanking
  if (ch === '_' && isWord(before)) return null;
  if (ch === '~') {
    if (run !== 2) return null;
    return closeEmphasis(text, start, '~~', 'del', failed);
  }
  if (run >= 2) {
    const strong = closeEmphasis(text, start, ch + ch, 'strong', failed);
    if (strong) return strong;
  }
  if (run === 1 || run === 3) return closeEmphasis(text, start, ch, 'em', failed);
  return null;
}

function closeEmphasis(text, start, delimiter, kind, failed) {
  const key = delimiter;
  if ((failed.get(key) ?? Infinity) <= start) return null;
  const ch = delimiter[0];
  const size = delimiter.length;
  let i = start + size;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === '`') {
      const span = codeSpan(text, i);
      if (span) {
        i = span.end;
        continue;
      }
    }
    if (c === ch) {
      let run = 1;
      while (text[i + run] === ch) run += 1;
      const closeAt = i + run - size; // the last `size` characters of the run close it
      const ok = run >= size
        && closeAt > start + size - 1
        && !isSpace(text[closeAt - 1])
        && !(ch === '_' && isWord(text[i + run]))
        // A single delimiter does not close on a double run (that is nested strong).
        && !(size === 1 && run === 2);
      if (ok && closeAt > start + size) {
        return { kind, content: text.slice(start + size, closeAt), end: closeAt + size };
      }
      i += run;
      continue;
    }
    i += 1;
  }
  failed.set(key, start);
  return null;
}

function wrapEmphasis(kind, children) {
  return h(kind, {}, children);
}
