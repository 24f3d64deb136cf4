// Oniguruma (Hugging Face tokenizers' regex engine) patterns -> JavaScript RegExp with the `u` flag, for
// tokenizer.json's Split {pattern: {Regex}} and Replace normalizers. Unsupported syntax is a bad_tokenizer error.
import { AjarError } from '../../tensor/errors.js';

// Oniguruma's Unicode classes, spelled with JavaScript's property escapes (usable inside [...] too).
// NOTE: JS's own \s holds U+FEFF and lacks U+0085, and its \d, \w are ASCII-only; Oniguruma's are Unicode
// (\s: White_Space; \d: Nd; \w: Letter, Mark, Nd, Pc). \p{L}, \p{N} follow the Unicode version of Node's ICU.
const CLASS_ESCAPES: Record<string, string> = {
  s: '\\p{White_Space}',
  S: '\\P{White_Space}',
  d: '\\p{Nd}',
  D: '\\P{Nd}',
  w: '\\p{L}\\p{M}\\p{Nd}\\p{Pc}',
};

// Characters JavaScript's u-mode lets (and needs) a backslash before: outside a class, and inside one (adds '-').
const SYNTAX_CHARS = new Set([...'^$\\.*+?()[]{}|/']);
const CLASS_SYNTAX_CHARS = new Set([...SYNTAX_CHARS, '-']);
const PLAIN_ESCAPES = new Set([...'tnrfv0bB']);

function isAsciiAlnum(c: string): boolean {
  return /^[A-Za-z0-9]$/.test(c);
}

/** Both cases of a character, for (?i:...) groups; the character itself when it has no other case. */
function caseVariants(ch: string): string[] {
  const lower = ch.toLowerCase();
  const upper = ch.toUpperCase();
  const out = new Set<string>([ch]);
  // Only simple (one code point) case pairs; a multi-character uppercase (ß -> SS) is not a class member.
  if ([...lower].length === 1) out.add(lower);
  if ([...upper].length === 1) out.add(upper);
  return [...out];
}

function escapeForClass(ch: string): string {
  return CLASS_SYNTAX_CHARS.has(ch) ? `\\${ch}` : ch;
}

/**
 * Translates an Oniguruma pattern (Ruby syntax, as tokenizers compiles it) into JavaScript regex source for the
 * `gmu` flags. Handles \p{..}, \s \S \d \D \w, \x{..}, (?i:...) and (?i) (by spelling each letter as a class),
 * lookarounds, non-capturing and named groups. Refuses what JavaScript cannot express the same way
 * (atomic groups, possessive quantifiers, nested classes, other inline flags) with bad_tokenizer naming `where`.
 */
export function onigToJsSource(pattern: string, where: string): string {
  const refuse = (what: string): never => {
    throw new AjarError('bad_tokenizer', `${where}: the regex ${JSON.stringify(pattern)} uses ${what}, which ajar cannot translate to a JavaScript regex`);
  };
  const chars = [...pattern];
  let out = '';
  let inClass = false;
  // One entry per open group: whether (?i) is in force inside it.
  const groups: boolean[] = [];
  let topCaseless = false;
  const caseless = (): boolean => (groups.length > 0 ? groups[groups.length - 1] : topCaseless);

  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === '\\') {
      const e = chars[++i];
      if (e === undefined) refuse('a trailing backslash');
      if (e === 'p' || e === 'P') {
        let name: string;
        if (chars[i + 1] === '{') {
          const close = chars.indexOf('}', i + 2);
          if (close < 0) refuse('an unclosed \\p{');
          name = chars.slice(i + 2, close).join('');
          i = close;
        } else {
          name = chars[++i] ?? refuse('a bare \\p');
        }
        let negated = e === 'P';
        if (name.startsWith('^')) {
          negated = !negated;
          name = name.slice(1);
        }
        out += `\\${negated ? 'P' : 'p'}{${name}}`;
      } else if (e in CLASS_ESCAPES) {
        out += inClass ? CLASS_ESCAPES[e] : `[${CLASS_ESCAPES[e]}]`;
      } else if (e === 'W') {
        if (inClass) refuse('\\W inside a character class');
        out += `[^${CLASS_ESCAPES.w}]`;
      } else if (e === 'x') {
        if (chars[i + 1] === '{') {
          const close = chars.indexOf('}', i + 2);
          if (close < 0) refuse('an unclosed \\x{');
          out += `\\u{${chars.slice(i + 2, close).join('')}}`;
          i = close;
        } else {
          out += `\\x${chars[i + 1] ?? ''}${chars[i + 2] ?? ''}`;
          i += 2;
        }
      } else if (e === 'u') {
        out += `\\u${chars.slice(i + 1, i + 5).join('')}`;
        i += 4;
      } else if (PLAIN_ESCAPES.has(e) || /[1-9]/.test(e)) {
        if (inClass && (e === 'b' || e === 'B')) refuse(`\\${e} inside a character class`);
        out += `\\${e}`;
      } else if (e === 'A') {
        out += '(?<![\\s\\S])';
      } else if (e === 'z') {
        out += '(?![\\s\\S])';
      } else if (isAsciiAlnum(e)) {
        refuse(`the escape \\${e}`);
      } else {
        out += inClass ? escapeForClass(e) : SYNTAX_CHARS.has(e) ? `\\${e}` : e;
      }
      continue;
    }

    if (inClass) {
      if (c === ']') {
        inClass = false;
        out += c;
      } else if (c === '[') {
        refuse('a nested character class');
      } else if (c === '&' && chars[i + 1] === '&') {
        refuse('class intersection (&&)');
      } else if (caseless() && chars[i + 1] === '-' && chars[i + 2] !== undefined && chars[i + 2] !== ']' && chars[i + 2] !== '\\') {
        // A range under (?i): a-z also takes A-Z. Only ASCII letter ranges have a simple other-case range.
        const to = chars[i + 2];
        out += `${escapeForClass(c)}-${escapeForClass(to)}`;
        if (/^[a-z]$/.test(c) && /^[a-z]$/.test(to)) out += `${c.toUpperCase()}-${to.toUpperCase()}`;
        else if (/^[A-Z]$/.test(c) && /^[A-Z]$/.test(to)) out += `${c.toLowerCase()}-${to.toLowerCase()}`;
        else if (/\p{L}/u.test(c) || /\p{L}/u.test(to)) refuse('a non-ASCII letter range under (?i)');
        i += 2;
      } else if (caseless() && /\p{L}/u.test(c)) {
        out += caseVariants(c).map(escapeForClass).join('');
      } else {
        out += c === '/' ? '\\/' : c;
      }
      continue;
    }

    if (c === '[') {
      inClass = true;
      out += c;
      if (chars[i + 1] === '^') {
        out += '^';
        i++;
      }
      if (chars[i + 1] === ']') { // a leading ] is a literal in Oniguruma
        out += '\\]';
        i++;
      }
    } else if (c === '(') {
      if (chars[i + 1] !== '?') {
        groups.push(caseless());
        out += c;
        continue;
      }
      const rest = chars.slice(i + 2, i + 5).join('');
      if (rest.startsWith(':') || rest.startsWith('=') || rest.startsWith('!') || rest.startsWith('<')) {
        // (?: (?= (?! (?<= (?<! (?<name>: the same in JavaScript; the rest of the group opener is copied as it comes.
        groups.push(caseless());
        out += '(?';
        i += 1;
      } else if (rest.startsWith('P<')) {
        groups.push(caseless());
        out += '(?';
        i += 2;
      } else if (rest.startsWith('i:')) {
        groups.push(true);
        out += '(?:';
        i += 3;
      } else if (rest.startsWith('i)')) {
        // (?i) turns caseless matching on up to the end of the enclosing group.
        if (groups.length > 0) groups[groups.length - 1] = true;
        else topCaseless = true;
        i += 3;
      } else if (rest.startsWith('>')) {
        refuse('an atomic group (?>...)');
      } else {
        refuse(`the group (?${rest}`);
      }
    } else if (c === ')') {
      groups.pop();
      out += c;
    } else if ((c === '+' || c === '*' || c === '?' || c === '}') && chars[i + 1] === '+') {
      refuse('a possessive quantifier');
    } else if (caseless() && /\p{L}/u.test(c)) {
      const variants = caseVariants(c);
      out += variants.length > 1 ? `[${variants.join('')}]` : c;
    } else if (c === '/') {
      out += '\\/';
    } else {
      out += c;
    }
  }
  if (inClass) refuse('an unclosed character class');
  return out;
}

/** The compiled pattern, flags `gmu` (Oniguruma's ^ and $ match at line breaks, as Ruby's do). */
export function onigToJsRegex(pattern: string, where: string): RegExp {
  const source = onigToJsSource(pattern, where);
  try {
    return new RegExp(source, 'gmu');
  } catch (e) {
    throw new AjarError('bad_tokenizer', `${where}: the regex ${JSON.stringify(pattern)} does not compile as JavaScript (${(e as Error).message})`);
  }
}

/** JavaScript regex source matching the literal string s. */
export function escapeRegexLiteral(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}
