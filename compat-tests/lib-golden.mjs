// Comparing an answer with a couchdb-golden recording (README sections 2.2 and 4.2): placeholders
// of the given kinds (<h3>, <bookmark5>...) are bound to our value on first sight and must be the
// same value afterwards; `any` placeholders (<ms>, <ref>...) match any value their test accepts.
// Requests that reuse a placeholder get our bound value (fill / fillJson).

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// kinds: {name: regex source of a value}, e.g. {h: '[0-9a-f]{32}'}; any: {'<ms>': (v) => bool}
export function goldenMatcher(kinds, any = {}, literal = {}) {
  const bind = new Map();
  const names = Object.keys(kinds).join('|');
  const PH = new RegExp(`<(?:${names})\\d+>`, 'g');
  const lit = (s) => Object.entries(literal).reduce((x, [k, v]) => x.split(k).join(v), s);
  const fill = (s) => lit(s).replace(PH, (all) => {
    if (!bind.has(all)) throw new Error(`request uses ${all}, which no earlier answer bound`);
    return bind.get(all);
  });
  const walk = (f) => (v) => {
    if (typeof v === 'string') return f(v);
    if (Array.isArray(v)) return v.map(walk(f));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(f)(x)]));
    return v;
  };
  const fillJson = walk(fill);
  // expected values with what is bound so far filled in (unbound placeholders stay)
  const fillKnown = walk((s) => lit(s).replace(PH, (all) => bind.get(all) ?? all));

  function matchStr(exp, act) {
    if (typeof act !== 'string') return false;
    PH.lastIndex = 0;
    if (!PH.test(exp)) return exp === act;
    const fresh = [];
    const re = '^' + exp.split(new RegExp(`(<(?:${names})\\d+>)`)).map((part) => {
      const m = new RegExp(`^<(${names})\\d+>$`).exec(part);
      if (!m) return esc(part);
      if (bind.has(part)) return esc(bind.get(part));
      fresh.push(part);
      return `(${kinds[m[1]]})`;
    }).join('') + '$';
    const mm = new RegExp(re).exec(act);
    if (!mm) return false;
    fresh.forEach((n, i) => bind.set(n, mm[i + 1]));
    return true;
  }

  function cmp(exp, act, where, errs) {
    if (typeof exp === 'function') {
      if (!exp(act)) errs.push(`${where}: unexpected ${JSON.stringify(act)}`);
      return;
    }
    if (typeof exp === 'string' && any[exp]) {
      if (!any[exp](act)) errs.push(`${where}: expected ${exp}, got ${JSON.stringify(act)}`);
      return;
    }
    if (typeof exp === 'string') {
      if (!matchStr(exp, act)) errs.push(`${where}: expected ${JSON.stringify(exp)}, got ${JSON.stringify(act)}`);
      return;
    }
    if (Array.isArray(exp)) {
      if (!Array.isArray(act)) { errs.push(`${where}: expected an array, got ${JSON.stringify(act)?.slice(0, 300)}`); return; }
      if (exp.length !== act.length) errs.push(`${where}: expected ${exp.length} items, got ${act.length}: ${JSON.stringify(act).slice(0, 400)}`);
      for (let i = 0; i < Math.min(exp.length, act.length); i++) cmp(exp[i], act[i], `${where}[${i}]`, errs);
      return;
    }
    if (exp && typeof exp === 'object') {
      if (!act || typeof act !== 'object' || Array.isArray(act)) { errs.push(`${where}: expected an object, got ${JSON.stringify(act)?.slice(0, 300)}`); return; }
      const ek = Object.keys(exp).sort(), ak = Object.keys(act).sort();
      if (ek.join() !== ak.join()) errs.push(`${where}: keys ${JSON.stringify(ak)}, expected ${JSON.stringify(ek)}`);
      for (const k of ek) if (k in act) cmp(exp[k], act[k], `${where}.${k}`, errs);
      return;
    }
    if (exp !== act) errs.push(`${where}: expected ${JSON.stringify(exp)}, got ${JSON.stringify(act)}`);
  }

  return { bind, fill, fillJson, fillKnown, cmp };
}
