//! Chunking strategies: fixed-size, hierarchical, semantic and none.
//!
//! Every offset is a byte offset into the document text and always lies on a
//! character boundary. Token counts come from the caller's counter (the embedding
//! model's tokenizer), which is called once per word.

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Byte span of the chunk text in the document.
    pub start: usize,
    pub end: usize,
    /// For hierarchical chunking: the byte span of the parent chunk this child belongs to.
    pub parent: Option<(usize, usize)>,
}

/// Words with their byte spans: maximal runs of non-whitespace.
pub fn words(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                spans.push((s, i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

/// FIXED_SIZE: consecutive word runs of at most `max_tokens` tokens; each next chunk starts so that
/// it repeats about `overlap_percentage`% of max_tokens worth of tokens from the end of the previous chunk
/// (at least one new word per chunk, so it always terminates). A single word longer than max_tokens is its own chunk.
pub fn fixed_size(
    text: &str,
    max_tokens: usize,
    overlap_percentage: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<Chunk> {
    let spans = words(text);
    let counts = token_counts(text, &spans, count);
    let overlap = max_tokens.saturating_mul(overlap_percentage) / 100;
    token_windows(&counts, max_tokens, overlap)
        .into_iter()
        .filter_map(|(from, to)| span_of(&spans, from, to))
        .map(|(start, end)| Chunk {
            start,
            end,
            parent: None,
        })
        .collect()
}

/// HIERARCHICAL: parents = fixed-size windows of `parent_max_tokens` with `overlap_tokens` token overlap;
/// children = windows of `child_max_tokens` with `overlap_tokens` overlap INSIDE each parent. Returns children, each with `parent: Some(parent span)`.
pub fn hierarchical(
    text: &str,
    parent_max_tokens: usize,
    child_max_tokens: usize,
    overlap_tokens: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<Chunk> {
    let spans = words(text);
    let counts = token_counts(text, &spans, count);
    let mut out = Vec::new();
    for (parent_from, parent_to) in token_windows(&counts, parent_max_tokens, overlap_tokens) {
        let Some(parent) = span_of(&spans, parent_from, parent_to) else {
            continue;
        };
        let parent_counts = counts.get(parent_from..parent_to).unwrap_or(&[]);
        for (from, to) in token_windows(parent_counts, child_max_tokens, overlap_tokens) {
            if let Some((start, end)) = span_of(&spans, parent_from + from, parent_from + to) {
                out.push(Chunk {
                    start,
                    end,
                    parent: Some(parent),
                });
            }
        }
    }
    out
}

/// Sentence spans: split after . ! ? (optionally followed by closing quotes/brackets) when followed by whitespace, and at blank lines (\n\n). Trim whitespace from spans; skip empty ones.
///
/// The full-width terminators 。！？ end a sentence even without whitespace after them.
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |k: usize| chars.get(k).map_or(text.len(), |&(pos, _)| pos);
    let mut spans = Vec::new();
    let mut segment_start = 0usize;
    let mut k = 0usize;
    while let Some(&(pos, c)) = chars.get(k) {
        let western = matches!(c, '.' | '!' | '?');
        let full_width = matches!(c, '\u{3002}' | '\u{ff01}' | '\u{ff1f}');
        if western || full_width {
            let mut m = k + 1;
            while chars.get(m).is_some_and(|&(_, d)| {
                matches!(d, '.' | '!' | '?' | '\u{3002}' | '\u{ff01}' | '\u{ff1f}')
            }) {
                m += 1;
            }
            while chars.get(m).is_some_and(|&(_, d)| is_closer(d)) {
                m += 1;
            }
            let boundary = match chars.get(m) {
                None => true,
                Some(&(_, d)) => full_width || d.is_whitespace(),
            };
            if boundary {
                let end = at(m);
                push_trimmed(text, segment_start, end, &mut spans);
                segment_start = end;
            }
            k = m;
            continue;
        }
        if c == '\n' {
            // A blank line: this newline, optional horizontal whitespace, another newline.
            let mut m = k + 1;
            while chars
                .get(m)
                .is_some_and(|&(_, d)| d != '\n' && d.is_whitespace())
            {
                m += 1;
            }
            if chars.get(m).is_some_and(|&(_, d)| d == '\n') {
                push_trimmed(text, segment_start, pos, &mut spans);
                segment_start = at(m + 1);
                k = m + 1;
                continue;
            }
        }
        k += 1;
    }
    push_trimmed(text, segment_start, text.len(), &mut spans);
    spans
}

/// For SEMANTIC: the text of each sentence together with `buffer_size` sentences on each side (the window whose embedding represents the sentence).
pub fn buffered_windows(
    text: &str,
    sentences: &[(usize, usize)],
    buffer_size: usize,
) -> Vec<String> {
    let n = sentences.len();
    (0..n)
        .map(|i| {
            let lo = i.saturating_sub(buffer_size);
            let hi = i.saturating_add(buffer_size).min(n - 1);
            let start = sentences.get(lo).map_or(0, |s| s.0);
            let end = sentences.get(hi).map_or(0, |s| s.1);
            text.get(start..end)
                .or_else(|| sentences.get(i).and_then(|&(s, e)| text.get(s..e)))
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

/// SEMANTIC: given the sentences and one unit-length embedding per buffered window, compute the cosine
/// distance (1 - dot) between consecutive windows; a break goes after sentence i when its distance is >= the
/// `breakpoint_percentile_threshold`-th percentile of all distances (linear interpolation percentile like numpy).
/// Groups longer than max_tokens are split further with fixed_size(…, max_tokens, 0) on the group's text
/// (offsets mapped back). Fewer than 2 sentences → one chunk (or none for empty text).
///
/// A distance of (almost) zero never breaks: identical windows show no change of topic.
/// A missing vector counts as distance zero. The single chunk of a text with fewer than two
/// sentences is also split when it exceeds `max_tokens`.
pub fn semantic(
    text: &str,
    sentences: &[(usize, usize)],
    window_vectors: &[Vec<f32>],
    max_tokens: usize,
    breakpoint_percentile_threshold: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<Chunk> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    if sentences.len() < 2 {
        return whole(text)
            .into_iter()
            .flat_map(|c| split_range(text, c.start, c.end, max_tokens, count))
            .collect();
    }
    let distances: Vec<f64> = (0..sentences.len() - 1)
        .map(
            |i| match (window_vectors.get(i), window_vectors.get(i + 1)) {
                (Some(a), Some(b)) => 1.0 - dot(a, b),
                _ => 0.0,
            },
        )
        .collect();
    let threshold = percentile(&distances, breakpoint_percentile_threshold);
    let mut chunks = Vec::new();
    let mut group_start = 0usize;
    for (i, &(_, end)) in sentences.iter().enumerate() {
        let last = i + 1 == sentences.len();
        let breaks = last
            || distances
                .get(i)
                .is_some_and(|&d| d >= threshold && d > MIN_BREAK_DISTANCE);
        if breaks {
            let start = sentences.get(group_start).map_or(end, |s| s.0);
            chunks.extend(split_range(text, start, end, max_tokens, count));
            group_start = i + 1;
        }
    }
    chunks
}

/// NONE: the whole (trimmed) document as one chunk; empty text → no chunks.
pub fn whole(text: &str) -> Vec<Chunk> {
    let mut spans = Vec::new();
    push_trimmed(text, 0, text.len(), &mut spans);
    spans
        .into_iter()
        .map(|(start, end)| Chunk {
            start,
            end,
            parent: None,
        })
        .collect()
}

/// Distances at or below this are treated as "no change".
const MIN_BREAK_DISTANCE: f64 = 1e-6;

fn token_counts(text: &str, spans: &[(usize, usize)], count: &dyn Fn(&str) -> usize) -> Vec<usize> {
    spans
        .iter()
        .map(|&(s, e)| text.get(s..e).map_or(0, count))
        .collect()
}

/// The byte span from the start of word `from` to the end of word `to - 1`.
fn span_of(spans: &[(usize, usize)], from: usize, to: usize) -> Option<(usize, usize)> {
    let first = spans.get(from)?;
    let last = spans.get(to.checked_sub(1)?)?;
    (from < to).then_some((first.0, last.1))
}

/// Greedy windows over word token counts, as word index ranges `[from, to)`.
///
/// Each window holds as many words as fit in `max_tokens` (at least one). The next window
/// starts early enough to repeat at most `overlap_tokens` tokens of the previous one, but
/// always after the previous window's first word and always with room for the first word
/// that the previous window did not hold, so every window brings something new.
fn token_windows(
    counts: &[usize],
    max_tokens: usize,
    overlap_tokens: usize,
) -> Vec<(usize, usize)> {
    let max = max_tokens.max(1);
    let mut out = Vec::new();
    let mut start = 0usize;
    while start < counts.len() {
        let mut end = start;
        let mut total = 0usize;
        while let Some(&c) = counts.get(end) {
            if end > start && total.saturating_add(c) > max {
                break;
            }
            total = total.saturating_add(c);
            end += 1;
        }
        out.push((start, end));
        let Some(&next_count) = counts.get(end) else {
            break;
        };
        let budget = overlap_tokens.min(max.saturating_sub(next_count));
        let mut next = end;
        if budget > 0 {
            let mut repeated = 0usize;
            while next > start + 1 {
                let c = counts.get(next - 1).copied().unwrap_or(0);
                if repeated.saturating_add(c) > budget {
                    break;
                }
                repeated += c;
                next -= 1;
            }
        }
        start = next;
    }
    out
}

/// Splits the byte range `[start, end)` of `text` into chunks of at most `max_tokens`
/// tokens without overlap; one chunk when it fits. Spans are trimmed.
fn split_range(
    text: &str,
    start: usize,
    end: usize,
    max_tokens: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<Chunk> {
    let Some(slice) = text.get(start..end) else {
        return Vec::new();
    };
    let trimmed = slice.trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    let base = start + (slice.len() - slice.trim_start().len());
    let spans = words(trimmed);
    let counts = token_counts(trimmed, &spans, count);
    let total = counts.iter().fold(0usize, |acc, &c| acc.saturating_add(c));
    if total <= max_tokens.max(1) {
        return vec![Chunk {
            start: base,
            end: base + trimmed.len(),
            parent: None,
        }];
    }
    token_windows(&counts, max_tokens, 0)
        .into_iter()
        .filter_map(|(from, to)| span_of(&spans, from, to))
        .map(|(s, e)| Chunk {
            start: base + s,
            end: base + e,
            parent: None,
        })
        .collect()
}

/// Pushes the trimmed span of `text[start..end]` unless it is empty.
fn push_trimmed(text: &str, start: usize, end: usize, spans: &mut Vec<(usize, usize)>) {
    let Some(slice) = text.get(start..end) else {
        return;
    };
    let trimmed = slice.trim();
    if trimmed.is_empty() {
        return;
    }
    let s = start + (slice.len() - slice.trim_start().len());
    spans.push((s, s + trimmed.len()));
}

fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\''
            | ')'
            | ']'
            | '}'
            | '\u{201d}'
            | '\u{2019}'
            | '\u{bb}'
            | '\u{300d}'
            | '\u{300f}'
            | '\u{ff09}'
    )
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// The `pct`-th percentile with linear interpolation between closest ranks
/// (numpy's default). `pct` above 100 counts as 100; no values gives 0.
fn percentile(values: &[f64], pct: usize) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = pct.min(100) as f64 / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let a = sorted.get(lo).copied().unwrap_or(0.0);
    let b = sorted.get(hi).copied().unwrap_or(a);
    a + (b - a) * (rank - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_word(_: &str) -> usize {
        1
    }

    fn by_len(s: &str) -> usize {
        s.len().div_ceil(4)
    }

    fn numbered(n: usize) -> String {
        (0..n)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn slice(text: &str, c: &Chunk) -> String {
        text[c.start..c.end].to_owned()
    }

    fn tokens(text: &str, c: &Chunk, count: &dyn Fn(&str) -> usize) -> usize {
        words(&text[c.start..c.end])
            .iter()
            .map(|&(s, e)| count(&text[c.start + s..c.start + e]))
            .sum()
    }

    fn assert_covers(text: &str, chunks: &[Chunk]) {
        for (s, e) in words(text) {
            assert!(
                chunks.iter().any(|c| c.start <= s && e <= c.end),
                "word {:?} not covered",
                &text[s..e]
            );
        }
    }

    #[test]
    fn words_are_whitespace_runs() {
        assert_eq!(words("  ab  c\td\n"), vec![(2, 4), (6, 7), (8, 9)]);
        assert_eq!(words(""), Vec::<(usize, usize)>::new());
        assert_eq!(words("   "), Vec::<(usize, usize)>::new());
        let t = "héllo wörld";
        let w = words(t);
        assert_eq!(w.len(), 2);
        assert_eq!(&t[w[0].0..w[0].1], "héllo");
        assert_eq!(&t[w[1].0..w[1].1], "wörld");
    }

    #[test]
    fn fixed_size_respects_budget_and_overlap() {
        let text = numbered(100);
        let chunks = fixed_size(&text, 10, 20, &per_word);
        assert!(chunks.len() > 1);
        for c in &chunks {
            assert!(tokens(&text, c, &per_word) <= 10);
            assert_eq!(c.parent, None);
        }
        for pair in chunks.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert!(b.start > a.start);
            assert!(b.end > a.end);
            assert!(b.start < a.end, "chunks should overlap");
            assert_eq!(words(&text[b.start..a.end]).len(), 2);
        }
        assert_eq!(chunks.first().unwrap().start, 0);
        assert_eq!(chunks.last().unwrap().end, text.len());
        assert_covers(&text, &chunks);
    }

    #[test]
    fn fixed_size_without_overlap_is_a_partition() {
        let text = numbered(35);
        let chunks = fixed_size(&text, 10, 0, &per_word);
        assert_eq!(chunks.len(), 4);
        for pair in chunks.windows(2) {
            assert!(pair[1].start > pair[0].end);
            assert_eq!(text[pair[0].end..pair[1].start].trim(), "");
        }
        assert_covers(&text, &chunks);
    }

    #[test]
    fn fixed_size_with_length_counter() {
        let text = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho";
        let chunks = fixed_size(text, 6, 30, &by_len);
        for c in &chunks {
            assert!(tokens(text, c, &by_len) <= 6, "{:?}", slice(text, c));
        }
        assert_covers(text, &chunks);
    }

    #[test]
    fn long_word_is_its_own_chunk() {
        let long = "x".repeat(100);
        let text = format!("a {long} b");
        let chunks = fixed_size(&text, 5, 20, &by_len);
        let texts: Vec<String> = chunks.iter().map(|c| slice(&text, c)).collect();
        assert_eq!(texts, vec!["a".to_owned(), long, "b".to_owned()]);
    }

    #[test]
    fn full_overlap_request_still_terminates() {
        let text = numbered(30);
        let chunks = fixed_size(&text, 5, 100, &per_word);
        assert!(chunks.len() < 30);
        for pair in chunks.windows(2) {
            assert!(pair[1].start > pair[0].start);
            assert!(pair[1].end > pair[0].end);
        }
        assert_covers(&text, &chunks);
        // A zero budget still makes progress.
        assert_eq!(fixed_size(&text, 0, 50, &per_word).len(), 30);
    }

    #[test]
    fn hierarchical_children_lie_inside_parents() {
        let text = numbered(200);
        let chunks = hierarchical(&text, 50, 10, 2, &per_word);
        assert!(!chunks.is_empty());
        let mut parents = Vec::new();
        for c in &chunks {
            let (ps, pe) = c.parent.unwrap();
            assert!(ps <= c.start && c.end <= pe);
            assert!(tokens(&text, c, &per_word) <= 10);
            assert!(words(&text[ps..pe]).len() <= 50);
            if !parents.contains(&(ps, pe)) {
                parents.push((ps, pe));
            }
        }
        assert!(parents.len() >= 4);
        // Parents overlap by two words.
        for pair in parents.windows(2) {
            assert_eq!(words(&text[pair[1].0..pair[0].1]).len(), 2);
        }
        assert_covers(&text, &chunks);
        assert_eq!(parents.first().unwrap().0, 0);
        assert_eq!(parents.last().unwrap().1, text.len());
    }

    #[test]
    fn sentences_split_on_terminators_and_blank_lines() {
        let text = "Hello world. How are you?  Fine!\tPi is 3.14 today.";
        let got: Vec<&str> = sentences(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(
            got,
            vec!["Hello world.", "How are you?", "Fine!", "Pi is 3.14 today."]
        );

        let text = "He said \"Stop.\" Then (he left.) Done...\n\nNew para\nsame para\n \r\nLast";
        let got: Vec<&str> = sentences(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(
            got,
            vec![
                "He said \"Stop.\"",
                "Then (he left.)",
                "Done...",
                "New para\nsame para",
                "Last"
            ]
        );
    }

    #[test]
    fn sentences_handle_unicode() {
        let text = "Ça va? Très bien. 日本語です。次の文！最後";
        let got: Vec<&str> = sentences(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(
            got,
            vec!["Ça va?", "Très bien.", "日本語です。", "次の文！", "最後"]
        );
        assert!(sentences("").is_empty());
        assert!(sentences(" \n\n ").is_empty());
    }

    #[test]
    fn buffered_windows_include_neighbours() {
        let text = "A one. B two. C three.";
        let s = sentences(text);
        assert_eq!(s.len(), 3);
        assert_eq!(
            buffered_windows(text, &s, 0),
            vec!["A one.", "B two.", "C three."]
        );
        assert_eq!(
            buffered_windows(text, &s, 1),
            vec!["A one. B two.", "A one. B two. C three.", "B two. C three."]
        );
        assert!(buffered_windows(text, &[], 1).is_empty());
    }

    #[test]
    fn percentile_matches_numpy() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(percentile(&[1.0, 2.0, 3.0, 4.0], 50), 2.5));
        assert!(close(percentile(&[4.0, 3.0, 2.0, 1.0], 0), 1.0));
        assert!(close(percentile(&[1.0, 2.0, 3.0, 4.0], 100), 4.0));
        assert!(close(percentile(&[1.0, 2.0, 3.0, 4.0], 250), 4.0));
        assert!(close(percentile(&[0.0, 0.0, 1.0, 0.0, 0.0], 95), 0.8));
        assert!(close(percentile(&[10.0, 20.0, 30.0], 25), 15.0));
        assert!(close(percentile(&[7.0], 90), 7.0));
        assert!(close(percentile(&[], 90), 0.0));
    }

    fn topic_vectors() -> Vec<Vec<f32>> {
        (0..6)
            .map(|i| {
                if i < 3 {
                    vec![1.0, 0.0]
                } else {
                    vec![0.0, 1.0]
                }
            })
            .collect()
    }

    const TOPICS: &str =
        "Cats purr. Cats nap. Cats hunt. Stocks rose. Stocks fell. Stocks rallied.";

    #[test]
    fn semantic_splits_where_meaning_changes() {
        let s = sentences(TOPICS);
        assert_eq!(s.len(), 6);
        let chunks = semantic(TOPICS, &s, &topic_vectors(), 100, 95, &per_word);
        let texts: Vec<String> = chunks.iter().map(|c| slice(TOPICS, c)).collect();
        assert_eq!(
            texts,
            vec![
                "Cats purr. Cats nap. Cats hunt.",
                "Stocks rose. Stocks fell. Stocks rallied."
            ]
        );
    }

    #[test]
    fn semantic_identical_vectors_make_one_chunk() {
        let s = sentences(TOPICS);
        let same = vec![vec![0.6_f32, 0.8]; 6];
        let chunks = semantic(TOPICS, &s, &same, 100, 95, &per_word);
        assert_eq!(chunks.len(), 1);
        assert_eq!(slice(TOPICS, &chunks[0]), TOPICS);
    }

    #[test]
    fn semantic_splits_oversized_groups() {
        let s = sentences(TOPICS);
        let chunks = semantic(TOPICS, &s, &topic_vectors(), 2, 95, &per_word);
        assert_eq!(chunks.len(), 6);
        for c in &chunks {
            assert!(tokens(TOPICS, c, &per_word) <= 2);
        }
        assert_covers(TOPICS, &chunks);
        // The groups stay apart: no chunk spans the topic change.
        let boundary = TOPICS.find("Stocks").unwrap();
        assert!(chunks
            .iter()
            .all(|c| c.end <= boundary || c.start >= boundary));
    }

    #[test]
    fn semantic_small_inputs() {
        assert!(semantic("", &[], &[], 10, 95, &per_word).is_empty());
        assert!(semantic("   ", &[], &[], 10, 95, &per_word).is_empty());
        let text = "  Just one sentence here.  ";
        let s = sentences(text);
        let chunks = semantic(text, &s, &[vec![1.0]], 100, 95, &per_word);
        assert_eq!(chunks.len(), 1);
        assert_eq!(slice(text, &chunks[0]), "Just one sentence here.");
        // Missing vectors never break.
        let chunks = semantic(TOPICS, &sentences(TOPICS), &[], 100, 95, &per_word);
        assert_eq!(chunks.len(), 1);
    }

    #[test]
    fn whole_document() {
        let text = "  hi there \n";
        assert_eq!(
            whole(text),
            vec![Chunk {
                start: 2,
                end: 10,
                parent: None
            }]
        );
        assert!(whole("").is_empty());
        assert!(whole(" \n\t ").is_empty());
    }

    #[test]
    fn empty_text_gives_no_chunks() {
        assert!(fixed_size("", 10, 20, &per_word).is_empty());
        assert!(fixed_size("  \n ", 10, 20, &per_word).is_empty());
        assert!(hierarchical("", 50, 10, 2, &per_word).is_empty());
        assert!(whole("").is_empty());
    }

    #[test]
    fn unicode_boundaries_stay_valid() {
        let text = "héllo wörld 日本語のテキスト ça marche très bien 🙂🙂 naïve café résumé Ωμέγα";
        let check = |chunks: &[Chunk]| {
            assert!(!chunks.is_empty());
            for c in chunks {
                assert!(text.is_char_boundary(c.start) && text.is_char_boundary(c.end));
                assert!(c.start < c.end);
                let t = text.get(c.start..c.end).unwrap();
                assert_eq!(t, t.trim());
            }
            assert_covers(text, chunks);
        };
        check(&fixed_size(text, 3, 30, &by_len));
        check(&hierarchical(text, 8, 3, 1, &by_len));
        let s = sentences(text);
        let vectors = vec![vec![1.0_f32]; s.len()];
        check(&semantic(text, &s, &vectors, 3, 50, &by_len));
        check(&whole(text));
    }
}
