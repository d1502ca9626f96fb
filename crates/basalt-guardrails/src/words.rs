//! Word filters: custom words and phrases and the managed PROFANITY list,
//! matched as whole words on a normalized copy of the text, so that case,
//! accents of the usual leetspeak (`sh1t`, `@ss`), separators inside a word
//! (`f.u.c.k`, `s-h-i-t`) and stretched letters (`fuuuck`) do not hide them.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// The managed profanity list (English), written for basalt.
pub const PROFANITY: &[&str] = &[
    "arse",
    "arsehole",
    "ass",
    "asshole",
    "assholes",
    "bastard",
    "bastards",
    "bitch",
    "bitches",
    "bitching",
    "bollocks",
    "bullshit",
    "clusterfuck",
    "cock",
    "cocksucker",
    "crap",
    "cunt",
    "cunts",
    "damn",
    "dammit",
    "dick",
    "dickhead",
    "dipshit",
    "douche",
    "douchebag",
    "dumbass",
    "fag",
    "faggot",
    "fuck",
    "fucked",
    "fucker",
    "fuckers",
    "fucking",
    "fuckin",
    "fucks",
    "goddamn",
    "goddamnit",
    "horseshit",
    "jackass",
    "jerkoff",
    "motherfucker",
    "motherfuckers",
    "motherfucking",
    "nigga",
    "nigger",
    "piss",
    "pissed",
    "prick",
    "pussy",
    "retard",
    "shit",
    "shits",
    "shitty",
    "shithead",
    "slut",
    "sluts",
    "son of a bitch",
    "twat",
    "wanker",
    "whore",
    "whores",
    "wtf",
    "stfu",
];

/// Text with letters mapped to a canonical form, and for each byte of it the
/// byte range of the original it came from.
struct Normalized {
    text: String,
    origin: Vec<(usize, usize)>,
}

fn fold(c: char) -> Option<char> {
    let c = match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => 'a',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ò' | 'ó' | 'ô' | 'ö' | 'õ' => 'o',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        c => c,
    };
    c.is_alphanumeric()
        .then(|| c.to_lowercase().next().unwrap_or(c))
}

/// A separator that obfuscators put between the letters of one word.
fn is_infix_separator(c: char) -> bool {
    matches!(c, '.' | '-' | '_' | '*' | '\'' | '`')
}

fn normalize(text: &str) -> Normalized {
    let mut out = String::with_capacity(text.len());
    let mut origin: Vec<(usize, usize)> = Vec::with_capacity(text.len());
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut last: Option<char> = None;
    let mut run = 0;
    for (i, &(at, c)) in chars.iter().enumerate() {
        let end = chars.get(i + 1).map_or(text.len(), |n| n.0);
        let prev_word = i > 0 && fold(chars[i - 1].1).is_some();
        let next_word = chars.get(i + 1).is_some_and(|n| fold(n.1).is_some());
        let mapped = match fold(c) {
            // Leetspeak digits count as letters only inside a word.
            Some(f) if c.is_ascii_digit() => Some(if prev_word || next_word { f } else { c }),
            // Symbols stand for letters only when a letter follows ("sh!t", "@ss").
            Some(f) if matches!(c, '!' | '|' | '@' | '$') => next_word.then_some(f),
            Some(f) => Some(f),
            None if is_infix_separator(c) && prev_word && next_word => continue,
            None => None,
        };
        match mapped {
            Some(f) => {
                if last == Some(f) {
                    run += 1;
                    if run >= 2 {
                        // A letter stretched three times or more counts once
                        // ("fuuuck" → "fuck"); doubles stay ("ass", "class").
                        if run == 2 {
                            if let Some(c) = out.pop() {
                                origin.truncate(origin.len() - c.len_utf8());
                            }
                        }
                        if let Some(o) = origin.last_mut() {
                            o.1 = end;
                        }
                        continue;
                    }
                } else {
                    run = 0;
                }
                last = Some(f);
                let start = out.len();
                out.push(f);
                for _ in start..out.len() {
                    origin.push((at, end));
                }
            }
            None => {
                last = None;
                run = 0;
                out.push(' ');
                origin.push((at, end));
            }
        }
    }
    Normalized { text: out, origin }
}

/// A compiled word filter.
pub struct WordMatcher {
    automaton: Option<AhoCorasick>,
    /// For each pattern: index of its rule.
    rules: Vec<usize>,
}

/// A match: which rule, and the original byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordMatch {
    pub rule: usize,
    pub start: usize,
    pub end: usize,
}

impl WordMatcher {
    /// A matcher over `words` (one rule per entry).
    #[must_use]
    pub fn new<'a>(words: impl IntoIterator<Item = &'a str>) -> Self {
        let mut patterns = Vec::new();
        let mut rules = Vec::new();
        for (i, w) in words.into_iter().enumerate() {
            let n = normalize(w).text;
            let n = n.split_whitespace().collect::<Vec<_>>().join(" ");
            if !n.is_empty() {
                patterns.push(n);
                rules.push(i);
            }
        }
        let automaton = (!patterns.is_empty())
            .then(|| {
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .ok()
            })
            .flatten();
        Self { automaton, rules }
    }

    /// Whole-word matches in `text`.
    #[must_use]
    pub fn find(&self, text: &str) -> Vec<WordMatch> {
        let Some(ac) = &self.automaton else {
            return Vec::new();
        };
        let norm = normalize(text);
        // Collapse runs of spaces so phrases match across any whitespace.
        let mut squeezed = String::with_capacity(norm.text.len());
        let mut origin = Vec::with_capacity(norm.origin.len());
        for (i, c) in norm.text.char_indices() {
            if c == ' ' && squeezed.ends_with(' ') {
                continue;
            }
            let start = squeezed.len();
            squeezed.push(c);
            for _ in start..squeezed.len() {
                origin.push(norm.origin[i]);
            }
        }
        let bytes = squeezed.as_bytes();
        let boundary =
            |i: usize| i == 0 || i >= bytes.len() || bytes[i] == b' ' || bytes[i - 1] == b' ';
        ac.find_iter(&squeezed)
            .filter(|m| {
                boundary(m.start())
                    && (m.start() == 0 || bytes[m.start() - 1] == b' ')
                    && (m.end() == bytes.len() || bytes[m.end()] == b' ')
            })
            .map(|m| WordMatch {
                rule: self.rules[m.pattern().as_usize()],
                start: origin[m.start()].0,
                end: origin[m.end() - 1].1,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(words: &[&str], text: &str) -> Vec<String> {
        WordMatcher::new(words.iter().copied())
            .find(text)
            .into_iter()
            .map(|m| text[m.start..m.end].to_string())
            .collect()
    }

    #[test]
    fn matches_whole_words_through_case_and_obfuscation() {
        assert_eq!(found(&["shit"], "Oh SHIT, no"), vec!["SHIT"]);
        assert_eq!(found(&["shit"], "oh sh1t"), vec!["sh1t"]);
        assert_eq!(found(&["shit"], "oh s.h.i.t!"), vec!["s.h.i.t"]);
        assert_eq!(found(&["fuck"], "fuuuuck this"), vec!["fuuuuck"]);
        assert_eq!(found(&["ass"], "an @ss"), vec!["@ss"]);
        assert_eq!(
            found(&["competitor x"], "Try Competitor   X today"),
            vec!["Competitor   X"]
        );
    }

    #[test]
    fn does_not_match_inside_other_words() {
        assert!(found(&["ass"], "a classic assessment").is_empty());
        assert!(found(&["hell"], "hello shell").is_empty());
        assert!(found(&["crap"], "scrapbook").is_empty());
    }
}
