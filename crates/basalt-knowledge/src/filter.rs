//! Metadata filters with Bedrock `RetrievalFilter` semantics.

use serde_json::{Map, Number, Value};

/// A filter over a chunk's metadata attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Equals(String, Value),
    NotEquals(String, Value),
    GreaterThan(String, f64),
    GreaterThanOrEquals(String, f64),
    LessThan(String, f64),
    LessThanOrEquals(String, f64),
    In(String, Vec<Value>),
    NotIn(String, Vec<Value>),
    StartsWith(String, String),
    ListContains(String, Value),
    StringContains(String, String),
    AndAll(Vec<Filter>),
    OrAll(Vec<Filter>),
}

impl Filter {
    /// Whether a chunk with this metadata passes the filter.
    ///
    /// - `Equals`: the attribute is present and equal (numbers compare by value, so
    ///   `3 == 3.0`); `NotEquals`: absent or not equal.
    /// - Numeric comparisons: the attribute is a JSON number and compares as asked.
    /// - `In` / `NotIn`: like `Equals` / `NotEquals` against any member.
    /// - `StartsWith`: a string attribute with that prefix.
    /// - `ListContains`: an array attribute with an element equal to the value.
    /// - `StringContains`: a string attribute containing the text, or an array
    ///   attribute with a string member containing it.
    /// - `AndAll` / `OrAll`: all / any of the children (an empty `AndAll` passes,
    ///   an empty `OrAll` does not).
    pub fn matches(&self, metadata: &Map<String, Value>) -> bool {
        match self {
            Filter::Equals(key, value) => metadata.get(key).is_some_and(|a| values_equal(a, value)),
            Filter::NotEquals(key, value) => {
                !metadata.get(key).is_some_and(|a| values_equal(a, value))
            }
            Filter::GreaterThan(key, n) => number(metadata, key).is_some_and(|a| a > *n),
            Filter::GreaterThanOrEquals(key, n) => number(metadata, key).is_some_and(|a| a >= *n),
            Filter::LessThan(key, n) => number(metadata, key).is_some_and(|a| a < *n),
            Filter::LessThanOrEquals(key, n) => number(metadata, key).is_some_and(|a| a <= *n),
            Filter::In(key, values) => metadata
                .get(key)
                .is_some_and(|a| values.iter().any(|v| values_equal(a, v))),
            Filter::NotIn(key, values) => !metadata
                .get(key)
                .is_some_and(|a| values.iter().any(|v| values_equal(a, v))),
            Filter::StartsWith(key, prefix) => metadata
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with(prefix.as_str())),
            Filter::ListContains(key, value) => metadata
                .get(key)
                .and_then(Value::as_array)
                .is_some_and(|items| items.iter().any(|item| values_equal(item, value))),
            Filter::StringContains(key, needle) => match metadata.get(key) {
                Some(Value::String(s)) => s.contains(needle.as_str()),
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|item| item.as_str().is_some_and(|s| s.contains(needle.as_str()))),
                _ => false,
            },
            Filter::AndAll(filters) => filters.iter().all(|f| f.matches(metadata)),
            Filter::OrAll(filters) => filters.iter().any(|f| f.matches(metadata)),
        }
    }
}

/// The attribute as a number, when it is a JSON number.
fn number(metadata: &Map<String, Value>, key: &str) -> Option<f64> {
    metadata.get(key)?.as_f64()
}

/// JSON equality in which numbers compare by value (`3 == 3.0`), recursively.
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

fn numbers_equal(x: &Number, y: &Number) -> bool {
    if let (Some(p), Some(q)) = (x.as_i64(), y.as_i64()) {
        return p == q;
    }
    if let (Some(p), Some(q)) = (x.as_u64(), y.as_u64()) {
        return p == q;
    }
    match (x.as_f64(), y.as_f64()) {
        (Some(p), Some(q)) => p == q,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> Map<String, Value> {
        match json!({
            "year": 2021,
            "score": 4.5,
            "genre": "science fiction",
            "title": "Dune",
            "tags": ["desert", "spice", "politics"],
            "ratings": [5, 4.0],
            "active": true,
            "nothing": null,
            "nested": {"a": 1}
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn s(v: &str) -> String {
        v.to_owned()
    }

    #[test]
    fn equals_and_not_equals() {
        let m = meta();
        assert!(Filter::Equals(s("title"), json!("Dune")).matches(&m));
        assert!(!Filter::Equals(s("title"), json!("dune")).matches(&m));
        assert!(Filter::Equals(s("year"), json!(2021.0)).matches(&m));
        assert!(Filter::Equals(s("score"), json!(4.5)).matches(&m));
        assert!(Filter::Equals(s("active"), json!(true)).matches(&m));
        assert!(!Filter::Equals(s("year"), json!("2021")).matches(&m));
        assert!(!Filter::Equals(s("missing"), json!("x")).matches(&m));
        assert!(Filter::Equals(s("nothing"), Value::Null).matches(&m));
        assert!(Filter::Equals(s("nested"), json!({"a": 1.0})).matches(&m));
        assert!(Filter::Equals(s("ratings"), json!([5.0, 4])).matches(&m));

        assert!(!Filter::NotEquals(s("title"), json!("Dune")).matches(&m));
        assert!(Filter::NotEquals(s("title"), json!("Emma")).matches(&m));
        assert!(Filter::NotEquals(s("missing"), json!("x")).matches(&m));
        assert!(!Filter::NotEquals(s("year"), json!(2021)).matches(&m));
    }

    #[test]
    fn numeric_comparisons() {
        let m = meta();
        assert!(Filter::GreaterThan(s("year"), 2020.5).matches(&m));
        assert!(!Filter::GreaterThan(s("year"), 2021.0).matches(&m));
        assert!(Filter::GreaterThanOrEquals(s("year"), 2021.0).matches(&m));
        assert!(!Filter::GreaterThanOrEquals(s("score"), 4.6).matches(&m));
        assert!(Filter::LessThan(s("score"), 5.0).matches(&m));
        assert!(!Filter::LessThan(s("score"), 4.5).matches(&m));
        assert!(Filter::LessThanOrEquals(s("score"), 4.5).matches(&m));
        assert!(!Filter::LessThanOrEquals(s("year"), 2000.0).matches(&m));
        // Only numbers compare: strings, booleans, arrays and absent keys never match.
        for key in ["title", "active", "ratings", "missing", "nothing"] {
            assert!(!Filter::GreaterThan(s(key), -1e300).matches(&m), "{key}");
            assert!(!Filter::LessThan(s(key), 1e300).matches(&m), "{key}");
            assert!(
                !Filter::GreaterThanOrEquals(s(key), f64::MIN).matches(&m),
                "{key}"
            );
            assert!(
                !Filter::LessThanOrEquals(s(key), f64::MAX).matches(&m),
                "{key}"
            );
        }
        let mut text_number = Map::new();
        text_number.insert(s("year"), json!("2021"));
        assert!(!Filter::GreaterThan(s("year"), 2000.0).matches(&text_number));
    }

    #[test]
    fn in_and_not_in() {
        let m = meta();
        assert!(Filter::In(s("genre"), vec![json!("drama"), json!("science fiction")]).matches(&m));
        assert!(!Filter::In(s("genre"), vec![json!("drama")]).matches(&m));
        assert!(Filter::In(s("year"), vec![json!(2020), json!(2021.0)]).matches(&m));
        assert!(!Filter::In(s("missing"), vec![json!("x")]).matches(&m));
        assert!(!Filter::In(s("genre"), vec![]).matches(&m));

        assert!(
            !Filter::NotIn(s("genre"), vec![json!("drama"), json!("science fiction")]).matches(&m)
        );
        assert!(Filter::NotIn(s("genre"), vec![json!("drama")]).matches(&m));
        assert!(Filter::NotIn(s("missing"), vec![json!("x")]).matches(&m));
        assert!(Filter::NotIn(s("genre"), vec![]).matches(&m));
    }

    #[test]
    fn starts_with() {
        let m = meta();
        assert!(Filter::StartsWith(s("genre"), s("science")).matches(&m));
        assert!(Filter::StartsWith(s("genre"), s("")).matches(&m));
        assert!(!Filter::StartsWith(s("genre"), s("fiction")).matches(&m));
        assert!(!Filter::StartsWith(s("year"), s("20")).matches(&m));
        assert!(!Filter::StartsWith(s("tags"), s("des")).matches(&m));
        assert!(!Filter::StartsWith(s("missing"), s("")).matches(&m));
    }

    #[test]
    fn list_contains() {
        let m = meta();
        assert!(Filter::ListContains(s("tags"), json!("spice")).matches(&m));
        assert!(!Filter::ListContains(s("tags"), json!("spi")).matches(&m));
        assert!(Filter::ListContains(s("ratings"), json!(4)).matches(&m));
        assert!(Filter::ListContains(s("ratings"), json!(5.0)).matches(&m));
        assert!(!Filter::ListContains(s("ratings"), json!(3)).matches(&m));
        assert!(!Filter::ListContains(s("genre"), json!("science fiction")).matches(&m));
        assert!(!Filter::ListContains(s("missing"), json!("x")).matches(&m));
    }

    #[test]
    fn string_contains() {
        let m = meta();
        assert!(Filter::StringContains(s("genre"), s("ence fic")).matches(&m));
        assert!(!Filter::StringContains(s("genre"), s("Fiction")).matches(&m));
        assert!(Filter::StringContains(s("tags"), s("pic")).matches(&m));
        assert!(!Filter::StringContains(s("tags"), s("ocean")).matches(&m));
        assert!(!Filter::StringContains(s("ratings"), s("5")).matches(&m));
        assert!(!Filter::StringContains(s("year"), s("20")).matches(&m));
        assert!(!Filter::StringContains(s("missing"), s("")).matches(&m));
    }

    #[test]
    fn and_all_or_all_nest() {
        let m = meta();
        let recent = Filter::GreaterThanOrEquals(s("year"), 2020.0);
        let old = Filter::LessThan(s("year"), 1990.0);
        let dune = Filter::Equals(s("title"), json!("Dune"));
        let spicy = Filter::ListContains(s("tags"), json!("spice"));
        let absent = Filter::Equals(s("missing"), json!(1));

        assert!(Filter::AndAll(vec![recent.clone(), dune.clone()]).matches(&m));
        assert!(!Filter::AndAll(vec![recent.clone(), absent.clone()]).matches(&m));
        assert!(Filter::OrAll(vec![old.clone(), dune.clone()]).matches(&m));
        assert!(!Filter::OrAll(vec![old.clone(), absent.clone()]).matches(&m));

        let nested = Filter::AndAll(vec![
            Filter::OrAll(vec![old.clone(), spicy.clone()]),
            Filter::OrAll(vec![
                absent.clone(),
                Filter::AndAll(vec![recent.clone(), dune.clone()]),
            ]),
        ]);
        assert!(nested.matches(&m));
        let nested_fail = Filter::OrAll(vec![
            Filter::AndAll(vec![old, spicy]),
            Filter::AndAll(vec![absent, recent, dune]),
        ]);
        assert!(!nested_fail.matches(&m));

        assert!(Filter::AndAll(vec![]).matches(&m));
        assert!(!Filter::OrAll(vec![]).matches(&m));
    }

    #[test]
    fn empty_metadata() {
        let m = Map::new();
        assert!(!Filter::Equals(s("a"), json!(1)).matches(&m));
        assert!(Filter::NotEquals(s("a"), json!(1)).matches(&m));
        assert!(Filter::NotIn(s("a"), vec![json!(1)]).matches(&m));
        assert!(!Filter::In(s("a"), vec![json!(1)]).matches(&m));
    }
}
