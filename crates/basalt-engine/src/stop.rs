//! Stop-sequence matching over streamed text: holds back exactly the text that
//! could still become a stop sequence, so nothing after a stop is ever sent.

/// Incremental matcher over generated text.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    pending: String,
}

/// What a push released.
#[derive(Debug, PartialEq, Eq)]
pub struct Released {
    /// Text safe to send now.
    pub text: String,
    /// The stop sequence that matched; generation must end.
    pub stopped: Option<String>,
}

impl StopMatcher {
    #[must_use]
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops,
            pending: String::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> Released {
        self.pending.push_str(text);
        if self.stops.is_empty() {
            return Released {
                text: std::mem::take(&mut self.pending),
                stopped: None,
            };
        }
        let first = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()).map(|at| (at, s)))
            .min_by_key(|(at, _)| *at);
        if let Some((at, stop)) = first {
            let stop = stop.clone();
            let text = self.pending[..at].to_string();
            self.pending.clear();
            return Released {
                text,
                stopped: Some(stop),
            };
        }
        // Hold back the longest suffix that is a prefix of some stop sequence.
        let hold = self
            .pending
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.pending[i..];
                self.stops.iter().any(|s| s.starts_with(tail))
            })
            .unwrap_or(self.pending.len());
        let text = self.pending[..hold].to_string();
        self.pending.drain(..hold);
        Released {
            text,
            stopped: None,
        }
    }

    /// Releases whatever is still held (generation ended for another reason).
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_text_through_without_stops() {
        let mut m = StopMatcher::new(vec![]);
        assert_eq!(m.push("abc").text, "abc");
    }

    #[test]
    fn holds_partial_match_and_stops_on_full_match() {
        let mut m = StopMatcher::new(vec!["END".into()]);
        assert_eq!(m.push("hello E").text, "hello ");
        let r = m.push("N");
        assert_eq!(r.text, "");
        assert_eq!(r.stopped, None);
        let r = m.push("D and more");
        assert_eq!(r.text, "");
        assert_eq!(r.stopped.as_deref(), Some("END"));
    }

    #[test]
    fn releases_held_text_when_match_breaks() {
        let mut m = StopMatcher::new(vec!["END".into()]);
        assert_eq!(m.push("xE").text, "x");
        assert_eq!(m.push("Nx").text, "ENx");
        assert_eq!(m.flush(), "");
    }

    #[test]
    fn earliest_stop_wins_and_multibyte_is_safe() {
        let mut m = StopMatcher::new(vec!["ü!".into(), "b".into()]);
        let r = m.push("aü!b");
        assert_eq!(r.text, "a");
        assert_eq!(r.stopped.as_deref(), Some("ü!"));
        let mut m = StopMatcher::new(vec!["éa".into()]);
        assert_eq!(m.push("xxé").text, "xx");
        assert_eq!(m.flush(), "é");
    }
}
