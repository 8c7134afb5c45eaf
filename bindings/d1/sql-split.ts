// Splitting SQL text into statements, for exec(), `--file` and migration files. SQLite's own
// prepare compiles one statement and ignores the rest, so multi-statement text is cut here: on
// semicolons outside quotes, comments, and the BEGIN ... END body of a CREATE TRIGGER (where CASE
// ... END nests). Each piece keeps the 1-based line it starts on, for error messages.

export interface SqlPiece {
  sql: string;
  line: number;
}

const WORD = /[A-Za-z_]/;

export function splitStatements(text: string): SqlPiece[] {
  const out: SqlPiece[] = [];
  let start = 0;
  let line = 1;
  let startLine = 1;
  let words: string[] = []; // the statement's leading keywords, to spot CREATE [TEMP] TRIGGER
  let depth = 0; // BEGIN/CASE ... END nesting inside a trigger body
  let awaitingStart = true; // no character of the next statement seen yet
  const push = (end: number) => {
    const sql = text.slice(start, end).trim();
    if (stripLeadingComments(sql) !== '') out.push({ sql, line: startLine });
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      line++;
      continue;
    }
    if (awaitingStart && !/\s/.test(c)) {
      startLine = line;
      awaitingStart = false;
    }
    if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = c === '[' ? ']' : c;
      let j = i + 1;
      for (; j < text.length; j++) {
        if (text[j] === '\n') line++;
        if (text[j] === close) {
          if (close !== ']' && text[j + 1] === close) j++; // doubled quote
          else break;
        }
      }
      i = j;
      continue;
    }
    if (c === '-' && text[i + 1] === '-') {
      while (i < text.length && text[i] !== '\n') i++;
      i--;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end === -1 ? text.length : end + 2;
      for (let j = i; j < stop; j++) if (text[j] === '\n') line++;
      i = stop - 1;
      continue;
    }
    if (WORD.test(c) && (i === 0 || !/[\w$]/.test(text[i - 1]))) {
      let j = i;
      while (j < text.length && /[\w$]/.test(text[j])) j++;
      const word = text.slice(i, j).toUpperCase();
      if (words.length < 4) words.push(word);
      const trigger = words[0] === 'CREATE' && (words[1] === 'TRIGGER' || (words[2] === 'TRIGGER' && (words[1] === 'TEMP' || words[1] === 'TEMPORARY')));
      if (trigger) {
        if (word === 'BEGIN' || (word === 'CASE' && depth > 0)) depth++;
        else if (word === 'END' && depth > 0) depth--;
      }
      i = j - 1;
      continue;
    }
    if (c === ';' && depth === 0) {
      push(i);
      start = i + 1;
      words = [];
      awaitingStart = true;
      continue;
    }
  }
  push(text.length);
  return out;
}

/** The statement without the comments and whitespace in front of it. */
export function stripLeadingComments(sql: string): string {
  let s = sql.trimStart();
  for (;;) {
    if (s.startsWith('--')) {
      const end = s.indexOf('\n');
      s = end === -1 ? '' : s.slice(end + 1).trimStart();
    } else if (s.startsWith('/*')) {
      const end = s.indexOf('*/');
      s = end === -1 ? '' : s.slice(end + 2).trimStart();
    } else {
      return s;
    }
  }
}

/** The first keyword of a statement, upper-cased ('' when none). */
export function firstKeyword(sql: string): string {
  const match = /^[A-Za-z]+/.exec(stripLeadingComments(sql));
  return match ? match[0].toUpperCase() : '';
}
