//! Interface name patterns, as the shell matches them.

/// Shell-style glob: `*` any run, `?` one character, `[abc]`, `[a-z]`,
/// `[!x]` (or `[^x]`) classes; an unclosed `[` is literal. No escapes,
/// since interface names never need them.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where to resume after the latest `*`: pattern index, name index.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p.get(pi) == Some(&'*') {
            pi += 1;
            star = Some((pi, ni));
            continue;
        }
        let Some(&c) = n.get(ni) else {
            return pi == p.len();
        };
        if let Some(next) = match_one(&p, pi, c) {
            pi = next;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            // Let the `*` swallow one more character and retry.
            pi = sp;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
}

/// If the pattern element at `pi` (not `*`) matches `c`, the index after it.
pub(crate) fn match_one(p: &[char], pi: usize, c: char) -> Option<usize> {
    match *p.get(pi)? {
        '?' => Some(pi + 1),
        '[' => match class(p, pi, c) {
            Some((true, next)) => Some(next),
            Some((false, _)) => None,
            None => (c == '[').then_some(pi + 1),
        },
        literal => (literal == c).then_some(pi + 1),
    }
}

/// Matches `c` against the class opening at `p[start]`: whether it matched
/// and the index after `]`, or None when the class is never closed.
pub(crate) fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negated = matches!(p.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let first = i;
    let mut matched = false;
    loop {
        let here = *p.get(i)?;
        if here == ']' && i > first {
            return Some((matched != negated, i + 1));
        }
        match (p.get(i + 1), p.get(i + 2)) {
            (Some('-'), Some(&hi)) if hi != ']' => {
                matched |= (here..=hi).contains(&c);
                i += 3;
            }
            _ => {
                matched |= here == c;
                i += 1;
            }
        }
    }
}
